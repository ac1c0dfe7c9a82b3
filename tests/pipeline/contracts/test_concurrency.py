import threading

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import user_of
from weiying.core.errors import ValidationFailed
from weiying.pipeline.models import Receipt
from weiying.pipeline.services import contracts as svc

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql",
                                reason="needs PostgreSQL to race two writers")


@pytest.fixture
def roles(db):
    """A transactional test starts from a flushed database: seed the built-in roles again."""
    from weiying.org.services import ensure_builtin_roles

    return ensure_builtin_roles()


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_racing_receipts_never_take_a_contract_beyond_its_total(roles, company,
                                                                 make_contract):
    contract = make_contract("signed")  # total 2000.00
    barrier = threading.Barrier(2)
    results: list[str] = []

    def pay() -> None:
        try:
            barrier.wait()
            svc.record_receipt(actor=user_of(company.finance), contract=contract,
                               amount="1500.00", received_on=timezone.localdate(),
                               method="bank")
            results.append("ok")
        except ValidationFailed as exc:
            results.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=pay) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["ok", "receipt_exceeds_due"]
    contract.refresh_from_db()
    assert str(contract.collected) == "1500.00"
    assert Receipt.objects.count() == 1
