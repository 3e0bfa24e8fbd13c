from __future__ import annotations

from django import forms


class InvalidInput(Exception):
    """Submitted data did not validate; `form` holds the errors to show."""

    def __init__(self, form: forms.BaseForm | forms.BaseFormSet, **related):
        super().__init__("invalid input")
        self.form = form
        # Other bound forms of the same submission (a formset beside a form).
        self.related = related


def validated[F: (forms.BaseForm, forms.BaseFormSet)](form: F, **related) -> F:
    if not form.is_valid():
        raise InvalidInput(form, **related)
    return form
