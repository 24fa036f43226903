from django import forms

from grid import network
from grid.models import FlexAsset, PrequalificationCheck


class ZoneImportForm(forms.Form):
    file = forms.FileField(help_text="GeoJSON FeatureCollection; each feature has properties name and code")


class AssetForm(forms.Form):
    name = forms.CharField(max_length=120)
    asset_type = forms.ChoiceField(choices=FlexAsset.AssetType.choices)
    connection_ean = forms.CharField(max_length=18, label="Connection EAN (18 digits)")
    latitude = forms.FloatField(help_text="Click the map to fill in")
    longitude = forms.FloatField()
    max_up_kw = forms.DecimalField(min_value=0, label="Max up (kW)")
    max_down_kw = forms.DecimalField(min_value=0, label="Max down (kW)")
    energy_capacity_kwh = forms.DecimalField(min_value=0, required=False, label="Energy capacity (kWh)")
    ramp_rate_kw_per_min = forms.DecimalField(min_value=0, required=False, label="Ramp rate (kW/min)")
    availability = forms.CharField(
        required=False,
        label="Availability windows",
        help_text='Local time, e.g. "mon-fri 07:00-22:00; sat 09:00-13:00". Empty: always available.',
    )


class AssetCsvForm(forms.Form):
    file = forms.FileField(
        help_text="CSV: name, asset_type, connection_ean, latitude, longitude, max_up_kw, max_down_kw, energy_capacity_kwh, ramp_rate_kw_per_min, availability (optional, e.g. mon-fri 07:00-22:00)"
    )


class PrequalificationForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[("approve", "Approve"), ("reject", "Reject"), ("suspend", "Suspend")]
    )
    reason = forms.CharField(required=False, max_length=500)


class ChecklistForm(forms.Form):
    """The DSO's prequalification checklist: the items that hold, and a note per item (`note_<item>`)."""

    checked = forms.MultipleChoiceField(
        choices=PrequalificationCheck.Item.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for item in PrequalificationCheck.Item.values:
            self.fields[f"note_{item}"] = forms.CharField(required=False, max_length=500)

    def notes(self) -> dict[str, str]:
        return {item: self.cleaned_data[f"note_{item}"] for item in PrequalificationCheck.Item.values}


class PortfolioForm(forms.Form):
    name = forms.CharField(max_length=120)
    assets = forms.ModelMultipleChoiceField(
        queryset=FlexAsset._default_manager.none(), widget=forms.CheckboxSelectMultiple
    )

    def __init__(self, *args, assets=None, **kwargs):
        super().__init__(*args, **kwargs)
        if assets is not None:
            self.fields["assets"].queryset = assets


class NetworkModelForm(forms.Form):
    name = forms.CharField(max_length=120)
    example = forms.ChoiceField(
        choices=[("", "— upload a file instead —"), *network.EXAMPLES.items()], required=False
    )
    file = forms.FileField(required=False, help_text="pandapower JSON (pandapower.to_json)")


class PowerFlowForm(forms.Form):
    scenario = forms.CharField(max_length=40, initial="base")
    load_scaling = forms.FloatField(initial=1.0, min_value=0, max_value=10)
    generation_scaling = forms.FloatField(initial=1.0, min_value=0, max_value=10)


class ForecastRunForm(forms.Form):
    delivery_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    load_scaling = forms.FloatField(initial=1.0, min_value=0, max_value=10)
    generation_scaling = forms.FloatField(initial=1.0, min_value=0, max_value=10)


class ForecastUploadForm(forms.Form):
    delivery_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    file = forms.FileField(
        help_text="CSV: bus,zone,ptu_start,p_kw,q_kvar (one of bus or zone per row; ptu_start ISO 8601 with offset)"
    )
