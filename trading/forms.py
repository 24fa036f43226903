from datetime import datetime, time
from zoneinfo import ZoneInfo

from django import forms

from trading.models import OrderMode


class OrderWindowForm(forms.Form):
    """A uniform block of kW over consecutive PTUs from a local start time (one delivery day)."""

    session = forms.ModelChoiceField(queryset=None, label="Session (product · delivery day)")
    start_time = forms.TimeField(
        initial=time(17, 0),
        label="First PTU (local time)",
        widget=forms.TimeInput(attrs={"type": "time", "step": 900}),
    )
    ptu_count = forms.IntegerField(min_value=1, max_value=100, initial=8, label="Number of PTUs (15 min)")
    quantity_kw = forms.DecimalField(min_value=0, label="kW per PTU")
    price = forms.DecimalField(min_value=0, label="Price (EUR/MWh, or EUR/MW/h for availability)")
    order_mode = forms.ChoiceField(choices=OrderMode.choices, initial=OrderMode.INITIATOR)

    def __init__(self, *args, sessions=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["session"].queryset = sessions

    def service_kwargs(self) -> dict:
        session = self.cleaned_data["session"]
        zone = ZoneInfo(session.product.market.time_zone)
        start = datetime.combine(session.delivery_day, self.cleaned_data["start_time"], tzinfo=zone)
        return {
            "product": session.product,
            "ptu_start": start.astimezone(ZoneInfo("UTC")),
            "quantities_kw": [float(self.cleaned_data["quantity_kw"])] * self.cleaned_data["ptu_count"],
            "price": self.cleaned_data["price"],
            "order_mode": self.cleaned_data["order_mode"],
        }


class RequestForm(OrderWindowForm):
    grid_location = forms.ModelChoiceField(queryset=None, label="Grid location")
    field_order = [
        "grid_location",
        "session",
        "start_time",
        "ptu_count",
        "quantity_kw",
        "price",
        "order_mode",
    ]

    def __init__(self, *args, zones=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["grid_location"].queryset = zones


class OfferForm(OrderWindowForm):
    asset = forms.ModelChoiceField(queryset=None, label="Approved asset")
    min_quantity_kw = forms.DecimalField(min_value=0, initial=0, label="Minimum accepted kW")
    all_or_nothing = forms.BooleanField(required=False, label="Block offer (all or nothing)")
    tso_eligible = forms.BooleanField(required=False, label="TSO may use it")
    field_order = [
        "asset",
        "session",
        "start_time",
        "ptu_count",
        "quantity_kw",
        "price",
        "min_quantity_kw",
        "all_or_nothing",
        "tso_eligible",
        "order_mode",
    ]

    def __init__(self, *args, assets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset"].queryset = assets

    def service_kwargs(self) -> dict:
        return super().service_kwargs() | {
            "asset": self.cleaned_data["asset"],
            "min_quantity_kw": self.cleaned_data["min_quantity_kw"],
            "all_or_nothing": self.cleaned_data["all_or_nothing"],
            "tso_eligible": self.cleaned_data["tso_eligible"],
        }


class OrderCsvForm(forms.Form):
    file = forms.FileField()


class AgreementForm(forms.Form):
    esp = forms.ModelChoiceField(queryset=None, label="ESP")
    asset = forms.ModelChoiceField(queryset=None, label="Asset in your zone")
    product = forms.ModelChoiceField(queryset=None)
    capacity_kw = forms.DecimalField(min_value=0)
    availability_price = forms.DecimalField(min_value=0, label="Availability price (EUR/MW/h)")
    activation_price = forms.DecimalField(min_value=0, label="Activation price (EUR/MWh)")
    days = forms.MultipleChoiceField(
        choices=[(str(i), d) for i, d in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])],
        widget=forms.CheckboxSelectMultiple,
        initial=["0", "1", "2", "3", "4"],
    )
    window_start = forms.TimeField(initial=time(17, 0), widget=forms.TimeInput(attrs={"type": "time"}))
    window_end = forms.TimeField(initial=time(20, 0), widget=forms.TimeInput(attrs={"type": "time"}))
    valid_from = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    valid_to = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, esps=None, assets=None, products=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["esp"].queryset = esps
        self.fields["asset"].queryset = assets
        self.fields["product"].queryset = products

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "esp": data["esp"],
            "asset": data["asset"],
            "grid_location": data["asset"].grid_location,
            "product": data["product"],
            "capacity_kw": data["capacity_kw"],
            "availability_price": data["availability_price"],
            "activation_price": data["activation_price"],
            "valid_from": data["valid_from"],
            "valid_to": data["valid_to"],
            "windows": [
                {
                    "days": [int(d) for d in data["days"]],
                    "start": data["window_start"].strftime("%H:%M"),
                    "end": data["window_end"].strftime("%H:%M"),
                }
            ],
        }
