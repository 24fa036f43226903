from django import forms


class MeterUploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV: asset_ean,ptu_start,kw — ISO 8601 times with offset, one row per asset and PTU"
    )


class DisputeForm(forms.Form):
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}))


class ResolveForm(forms.Form):
    resolution = forms.CharField()
    uphold = forms.BooleanField(required=False)
    accepted_delivered_kwh = forms.DecimalField(required=False, min_value=0)


class ReopenForm(forms.Form):
    reason = forms.CharField()


class PeriodForm(forms.Form):
    name = forms.CharField(max_length=60)
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))


class PeriodStepForm(forms.Form):
    """The confirmation page of a settlement step: `confirm` is set by its button; a reason where the step needs one."""

    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)
    reason = forms.CharField(required=False, max_length=500)
    override_reason = forms.CharField(required=False, max_length=500)


class PrognosisDayForm(forms.Form):
    """Which of your assets and which delivery day (the template and the chart editor)."""

    asset = forms.ModelChoiceField(queryset=None)
    delivery_day = forms.DateField(widget=forms.DateInput(attrs={"type": "date", "class": "input"}))

    def __init__(self, *args, assets=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["asset"].queryset = assets


class PrognosisForm(PrognosisDayForm):
    values_kw = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="kW per PTU",
        help_text="One value per PTU of the day (96; 92 or 100 on DST days), separated by spaces",
    )


class PrognosisCsvForm(forms.Form):
    file = forms.FileField(
        help_text="CSV: asset_ean,delivery_day,values_kw — or the template of one asset and day (one row per PTU)"
    )


class TemperatureUploadForm(forms.Form):
    file = forms.FileField(
        help_text="CSV: grid_location_code,start,celsius — ISO 8601 times with offset on a PTU boundary, "
        "hourly or per PTU"
    )
