"""Commission desk routes, included by weiying.performance.urls under "commissions/" (names in
the "performance" namespace, prefixed commission_)."""

from django.urls import path

from weiying.performance import views_commissions as views

urlpatterns = [
    path("", views.commission_statements, name="commission_statements"),
    path("compute/", views.commission_compute, name="commission_compute"),
    path("<int:pk>/", views.commission_statement, name="commission_statement"),
    path("<int:pk>/<str:action>/", views.commission_action, name="commission_action"),
    path("plans/", views.commission_plans, name="commission_plans"),
    path("plans/new/", views.commission_plan_new, name="commission_plan_new"),
    path("plans/<int:pk>/", views.commission_plan_edit, name="commission_plan_edit"),
]
