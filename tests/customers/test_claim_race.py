"""Claims under real concurrency: threads, each with its own database connection.

On PostgreSQL the row lock and the conditional UPDATE do the work; on SQLite the write lock
taken at the start of each transaction (transaction_mode IMMEDIATE) serialises the claims,
so the same assertions hold there too.
"""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from weiying.core.errors import DomainError
from weiying.customers import services
from weiying.customers.models import Customer, OwnershipChange
from weiying.org import services as org
from weiying.org.models import Role

pytestmark = pytest.mark.django_db(transaction=True)



def _reps(company, count):
    role = Role.objects.get(code="rep")
    users = []
    for i in range(count):
        employee = org.create_employee(actor=None, number=f"R{i:03d}", name=f"并发{i}",
                                       department=company.team_a, role=role, check=False)
        user = get_user_model().objects.create_user(username=f"r{i:03d}", password="x" * 12)
        employee.user = user
        employee.save(update_fields=["user"])
        users.append(user)
    return users


def _run(jobs):
    """Start every job at once; return what each returned or raised."""
    barrier = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def worker(i, job):
        try:
            barrier.wait()
            results[i] = job()
        except DomainError as exc:
            results[i] = exc
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results


def test_fifty_concurrent_claims_give_exactly_one_owner(company):
    users = _reps(company, 50)
    customer = services.create_customer(actor=None, name="抢手客户", owner=None,
                                        pool_department=company.east)

    results = _run([
        (lambda u=u: services.claim_customer(actor=u, customer=customer)) for u in users
    ])

    winners = [r for r in results if isinstance(r, Customer)]
    losers = [r for r in results if not isinstance(r, Customer)]
    assert len(winners) == 1
    # A loser either finds it taken, or no longer sees it at all (a rep sees only their own).
    assert {getattr(r, "code", repr(r)) for r in losers} <= {"not_in_pool", "not_found"}
    customer.refresh_from_db()
    assert customer.in_pool is False
    assert customer.owner_id == winners[0].owner_id
    assert OwnershipChange.objects.filter(customer=customer, action="claim").count() == 1


def test_one_persons_parallel_claims_respect_the_daily_limit(company, settings):
    settings.WEIYING = {**settings.WEIYING, "POOL_DAILY_CLAIM_LIMIT": 3}
    (user,) = _reps(company, 1)
    customers = [
        services.create_customer(actor=None, name=f"池客户{i}", owner=None,
                                 pool_department=company.east)
        for i in range(10)
    ]

    results = _run([
        (lambda c=c: services.claim_customer(actor=user, customer=c)) for c in customers
    ])

    codes = sorted(getattr(r, "code", "ok" if isinstance(r, Customer) else repr(r))
                   for r in results)
    assert codes == ["claim_daily_limit"] * 7 + ["ok"] * 3
    assert Customer.objects.filter(owner__user=user).count() == 3
