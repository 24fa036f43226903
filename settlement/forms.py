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


class PeriodForm(forms.Form):
    name = forms.CharField(max_length=60)
    start = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
