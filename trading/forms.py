from datetime import datetime, time
from zoneinfo import ZoneInfo

from django import forms

from flexmarket import ptu as ptus
from flexmarket.localtime import ptu_choices
from trading.models import OrderMode
from trading.price_selectors import PRICE_DAY_MESSAGE, price_day_allowed


class OrderWindowForm(forms.Form):
    """A uniform block of kW over consecutive PTUs of one delivery day, the first PTU picked by its local clock
    time (the repeated autumn hour offers each 02:xx twice, with its offset; the missing spring hour is absent)."""

    session = forms.ModelChoiceField(queryset=None, label="Session (product · delivery day)")
    ptu_start = forms.ChoiceField(label="First PTU (local time)")
    ptu_count = forms.IntegerField(min_value=1, max_value=100, initial=8, label="Number of PTUs (15 min)")
    quantity_kw = forms.DecimalField(min_value=0, label="kW per PTU")
    price = forms.DecimalField(min_value=0, label="Price (EUR/MWh, or EUR/MW/h for availability)")
    order_mode = forms.ChoiceField(choices=OrderMode.choices, initial=OrderMode.INITIATOR)

    def __init__(self, *args, sessions=None, **kwargs):
        super().__init__(*args, **kwargs)
        sessions = sessions.select_related("product__market")
        self.fields["session"].queryset = sessions
        # One group of PTUs per session (its delivery day in its market's zone); the page shows the chosen
        # session's group only (static/js/order-form.js).
        self.fields["ptu_start"].choices = [
            (
                f"{session}",
                ptu_choices(
                    session.delivery_start, session.delivery_end, ZoneInfo(session.product.market.time_zone)
                ),
            )
            for session in sessions
        ]
        self.fields["ptu_start"].widget.attrs["data-session-groups"] = "1"

    def clean(self):
        cleaned = super().clean()
        session, value = cleaned.get("session"), cleaned.get("ptu_start")
        if session is None or not value:
            return cleaned
        start = datetime.fromisoformat(value)
        if not session.delivery_start <= start < session.delivery_end:
            self.add_error(
                "ptu_start", f"Choose a PTU of the session's delivery day ({session.delivery_day})."
            )
            return cleaned
        cleaned["ptu_start_utc"] = start.astimezone(ptus.UTC)
        return cleaned

    def service_kwargs(self) -> dict:
        session = self.cleaned_data["session"]
        return {
            "product": session.product,
            "ptu_start": self.cleaned_data["ptu_start_utc"],
            "quantities_kw": [float(self.cleaned_data["quantity_kw"])] * self.cleaned_data["ptu_count"],
            "price": self.cleaned_data["price"],
            "order_mode": self.cleaned_data["order_mode"],
        }


class RequestForm(OrderWindowForm):
    grid_location = forms.ModelChoiceField(queryset=None, label="Grid location")
    field_order = [
        "grid_location",
        "session",
        "ptu_start",
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
    # A reactive range (network-aware products only; the service judges the rules, limits.clean_reactive).
    q_min_kvar = forms.DecimalField(
        required=False, max_value=0, label="Reactive: most kVAr absorbed (≤ 0)",
        help_text="Network-aware products only: minimum, maximum and price together, or none.",
    )  # fmt: skip
    q_max_kvar = forms.DecimalField(required=False, min_value=0, label="Reactive: most kVAr injected (≥ 0)")
    q_price = forms.DecimalField(required=False, min_value=0, label="Reactive price (EUR/Mvarh)")
    field_order = [
        "asset",
        "session",
        "ptu_start",
        "ptu_count",
        "quantity_kw",
        "price",
        "min_quantity_kw",
        "all_or_nothing",
        "tso_eligible",
        "order_mode",
        "q_min_kvar",
        "q_max_kvar",
        "q_price",
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
            "q_min_kvar": self.cleaned_data["q_min_kvar"],
            "q_max_kvar": self.cleaned_data["q_max_kvar"],
            "q_price": self.cleaned_data["q_price"],
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


class PricesForm(forms.Form):
    """What the prices page shows: a product, one of its zones, a delivery day and a PTU of it (by local clock
    time; the index into the day's PTUs, so both 02:xx of the autumn DST day can be chosen). Products and zones
    come as loaded lists, so checking and drawing the choices costs no query."""

    product = forms.TypedChoiceField(coerce=int)
    grid_location = forms.TypedChoiceField(coerce=int, label="Zone")
    day = forms.DateField(label="Delivery day", widget=forms.DateInput(attrs={"type": "date"}))
    ptu = forms.TypedChoiceField(coerce=int, label="PTU (local time)")

    def __init__(self, *args, products=(), zones=(), ptu_labels=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.products = {product.pk: product for product in products}
        self.zones = {zone.pk: zone for zone in zones}
        self.fields["product"].choices = [(product.pk, product.name) for product in products]
        self.fields["grid_location"].choices = [(zone.pk, zone.name) for zone in zones]
        self.fields["ptu"].choices = list(enumerate(ptu_labels))

    def clean_product(self):
        return self.products[self.cleaned_data["product"]]

    def clean_grid_location(self):
        return self.zones[self.cleaned_data["grid_location"]]

    def clean_day(self):
        day = self.cleaned_data["day"]
        if not price_day_allowed(day):
            raise forms.ValidationError(PRICE_DAY_MESSAGE)
        return day
