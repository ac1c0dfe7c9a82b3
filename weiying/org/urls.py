from django.urls import path

from weiying.org import views, views_roster

app_name = "org"

urlpatterns = [
    path("", views.chart, name="chart"),
    path("employees/", views.employee_list, name="employee_list"),
    path("employees/new/", views.employee_new, name="employee_new"),
    path("employees/<int:pk>/", views.employee_detail, name="employee_detail"),
    path("employees/<int:pk>/edit/", views.employee_edit, name="employee_edit"),
    path("employees/<int:pk>/transfer/", views.employee_transfer, name="employee_transfer"),
    path("employees/<int:pk>/promote/", views.employee_promote, name="employee_promote"),
    path("employees/<int:pk>/leader/", views.employee_leader, name="employee_leader"),
    path("employees/<int:pk>/leave/", views.employee_leave, name="employee_leave"),
    path("departments/new/", views.department_new, name="department_new"),
    path("departments/<int:pk>/edit/", views.department_edit, name="department_edit"),
    path("departments/<int:pk>/move/", views.department_move, name="department_move"),
    *views_roster.urlpatterns,
]
