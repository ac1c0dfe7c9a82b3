"""Forms for the organisation pages: they parse input; the org services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from weiying.org.choices import DepartmentKind, EmployeeStatus, EmploymentType
from weiying.org.models import Department, Employee, Role

DATE_WIDGET = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


class EmployeeNumberField(forms.CharField):
    """An employee picked by employee number among `people` (a roster can be thousands long,
    too long for a drop-down). Empty means nobody."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 32)
        super().__init__(*args, **kwargs)
        self.people: QuerySet[Employee] = Employee.objects.none()

    def prepare_value(self, value: Any) -> Any:
        return value.number if isinstance(value, Employee) else value

    def clean(self, value: Any) -> Employee | None:  # type: ignore[override]
        number = (super().clean(value) or "").strip()
        if not number:
            return None
        found = self.people.filter(number=number).first()
        if found is None:
            raise forms.ValidationError(
                _("No employee numbered %(number)s among those you may see; check the number."),
                params={"number": number},
            )
        return found


class DepartmentChoiceField(forms.ModelChoiceField):
    """Departments in tree order, indented by depth."""

    def label_from_instance(self, obj: Department) -> str:
        return "\u3000" * (obj.depth - 1) + obj.name


class RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Role) -> str:
        return obj.label


def _departments(user: Any) -> QuerySet[Department]:
    from weiying.org.selectors import visible_departments

    return visible_departments(user).filter(is_active=True).order_by("path")


def _people(user: Any) -> QuerySet[Employee]:
    from weiying.core.scope import visible_employees

    return visible_employees(user)


class ProfileForm(forms.Form):
    """The fields of an employee's own profile (not their place in the organisation)."""

    name = forms.CharField(label=_("Name"), max_length=64,
                           error_messages={"required": _("Give the employee a name.")})
    position = forms.CharField(label=_("Job title"), max_length=64, required=False)
    level = forms.CharField(label=_("Level"), max_length=16, required=False)
    role = RoleChoiceField(label=_("Role"), queryset=Role.objects.order_by("pk"),
                           required=False, empty_label=_("No role (sees no records)"),
                           help_text=_("What the employee may do and which records they see."))
    phone = forms.CharField(label=_("Mobile"), max_length=32, required=False)
    email = forms.EmailField(label=_("Email"), required=False, error_messages={
        "invalid": _("This is not an email address; check it or leave it empty.")})
    city = forms.CharField(label=_("City"), max_length=64, required=False)
    hire_date = forms.DateField(label=_("Hire date"), required=False, widget=DATE_WIDGET)
    employment_type = forms.ChoiceField(label=_("Employment type"),
                                        choices=EmploymentType.choices, required=False,
                                        initial=EmploymentType.FULL_TIME)
    payroll_number = forms.CharField(
        label=_("Payroll number"), max_length=32, required=False,
        help_text=_("The number payroll knows this person by; the commission export carries "
                    "it."))

    def clean_employment_type(self) -> str | None:
        # Not sent: left as it is (a new employee starts full-time).
        return self.cleaned_data.get("employment_type") or None


def _effective_date(label: Any) -> forms.DateField:
    return forms.DateField(
        label=label, required=False, widget=DATE_WIDGET,
        help_text=_("Leave empty for today. A past day re-files the figures from that day on "
                    "under the new assignment."))


def _not_future(day: Any) -> Any:
    if day and day > timezone.localdate():
        raise forms.ValidationError(
            _("%(date)s is in the future; record the change on the day it takes effect, or "
              "enter today or a past day.") % {"date": day.isoformat()})
    return day


class EmployeeForm(ProfileForm):
    """A new employee: the profile plus the number, the department and the direct leader."""

    number = forms.CharField(label=_("Employee number"), max_length=32,
                             error_messages={"required": _("Give the employee a number.")})
    department = DepartmentChoiceField(
        label=_("Department"), queryset=Department.objects.none(),
        error_messages={"required": _("Pick the employee's department.")})
    leader = EmployeeNumberField(label=_("Direct leader (employee number)"), required=False,
                                 help_text=_("Leave empty if the employee reports to nobody."))

    field_order = ["number", "name", "department", "leader", "position", "level", "role",
                   "phone", "email", "city", "hire_date", "employment_type", "payroll_number"]

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = _departments(user)
        self.fields["leader"].people = _people(user)

    def clean_employment_type(self) -> str:
        return self.cleaned_data.get("employment_type") or EmploymentType.FULL_TIME


class EmployeeEditForm(ProfileForm):
    status = forms.ChoiceField(
        label=_("Status"), choices=[(s.value, s.label) for s in
                                    (EmployeeStatus.ACTIVE, EmployeeStatus.PROBATION)],
        help_text=_("A departure is recorded with “Record leaving”."))


class TransferForm(forms.Form):
    department = DepartmentChoiceField(
        label=_("New department"), queryset=Department.objects.none(),
        error_messages={"required": _("Pick the department to move the employee to.")})
    on = _effective_date(_("Effective from"))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["department"].queryset = _departments(user)

    def clean_on(self) -> Any:
        return _not_future(self.cleaned_data.get("on"))


class PromoteForm(forms.Form):
    """A new position and/or level (a promotion, or a demotion) from a day."""

    position = forms.CharField(label=_("New job title"), max_length=64, required=False)
    level = forms.CharField(label=_("New level"), max_length=16, required=False)
    on = _effective_date(_("Effective from"))

    def clean_on(self) -> Any:
        return _not_future(self.cleaned_data.get("on"))


class LeaderForm(forms.Form):
    leader = EmployeeNumberField(label=_("Direct leader (employee number)"), required=False,
                                 help_text=_("Leave empty if the employee reports to nobody."))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["leader"].people = _people(user)


class LeaveForm(forms.Form):
    leave_date = forms.DateField(label=_("Leave date"), widget=DATE_WIDGET,
                                 initial=timezone.localdate,
                                 error_messages={"required": _("Give the last day of work.")})
    successor = EmployeeNumberField(
        label=_("Successor (employee number)"), required=False,
        help_text=_("Their customers, open opportunities, open leads and WeCom contacts go to "
                    "this colleague. Leave empty to hand them over later."))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["successor"].people = _people(user)


class DepartmentForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=128,
                           error_messages={"required": _("Give the department a name.")})
    kind = forms.ChoiceField(label=_("Kind"), choices=DepartmentKind.choices,
                             initial=DepartmentKind.TEAM)
    city = forms.CharField(label=_("City"), max_length=64, required=False)
    region = forms.CharField(label=_("Region"), max_length=64, required=False)
    manager = EmployeeNumberField(label=_("Head (employee number)"), required=False,
                                  help_text=_("Leave empty if the department has no head."))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["manager"].people = _people(user)


class DepartmentNewForm(forms.Form):
    parent = DepartmentChoiceField(
        label=_("Parent department"), queryset=Department.objects.none(),
        error_messages={"required": _("Pick the department the new one sits under.")})
    name = forms.CharField(label=_("Name"), max_length=128,
                           error_messages={"required": _("Give the department a name.")})
    kind = forms.ChoiceField(label=_("Kind"), choices=DepartmentKind.choices,
                             initial=DepartmentKind.TEAM)
    city = forms.CharField(label=_("City"), max_length=64, required=False)
    region = forms.CharField(label=_("Region"), max_length=64, required=False)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = _departments(user)


class MoveForm(forms.Form):
    parent = DepartmentChoiceField(
        label=_("New parent department"), queryset=Department.objects.none(),
        error_messages={"required": _("Pick the department to move it under.")})

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["parent"].queryset = _departments(user)
