from django.urls import path

from weiying.customers import views

app_name = "customers"

urlpatterns = [
    path("", views.customer_list, name="customer_list"),
    path("new/", views.customer_new, name="customer_new"),
    path("pool/", views.pool, name="pool"),
    path("<int:pk>/", views.customer_detail, name="customer_detail"),
    path("<int:pk>/edit/", views.customer_edit, name="customer_edit"),
    path("<int:pk>/merge/", views.customer_merge, name="customer_merge"),
    path("<int:pk>/claim/", views.customer_claim, name="customer_claim"),
    path("<int:pk>/release/", views.customer_release, name="customer_release"),
    path("<int:pk>/assign/", views.customer_assign, name="customer_assign"),
    path("<int:pk>/phone/", views.customer_reveal_phone, name="customer_reveal_phone"),
    path("<int:pk>/contacts/", views.customer_contact_add, name="customer_contact_add"),
    path("<int:pk>/consents/", views.customer_consent_add, name="customer_consent_add"),
    path("<int:pk>/tags/", views.customer_tags, name="customer_tags"),
]
