from django.urls import path

from weiying.finance import views

app_name = "finance"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("bridge/", views.bridge, name="bridge"),
    path("revenue/", views.revenue, name="revenue"),
    path("ageing/", views.ageing, name="ageing"),
    path("liabilities/", views.liabilities, name="liabilities"),
    path("invoiced/", views.invoiced_not_collected, name="invoiced_not_collected"),
    path("marketing/", views.marketing, name="marketing"),
    path("vouchers/", views.voucher_list, name="voucher_list"),
    path("vouchers/new/", views.voucher_new, name="voucher_new"),
    path("vouchers/<int:pk>/", views.voucher_detail, name="voucher_detail"),
    path("vouchers/<int:pk>/reverse/", views.voucher_reverse, name="voucher_reverse"),
    path("periods/", views.period_list, name="period_list"),
    path("periods/close/", views.period_close, name="period_close"),
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/<int:pk>/void/", views.invoice_void, name="invoice_void"),
    path("contracts/<int:pk>/invoice/", views.invoice_new, name="invoice_new"),
    path("contracts/<int:pk>/refund/", views.refund_new, name="refund_new"),
    path("bank/", views.bank_queue, name="bank_queue"),
    path("bank/import/", views.bank_import, name="bank_import"),
    path("bank/<int:pk>/match/", views.bank_match, name="bank_match"),
    path("bank/<int:pk>/ignore/", views.bank_ignore, name="bank_ignore"),
]
