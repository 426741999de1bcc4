"""Form helpers shared by every app's views and admin."""


def service_errors_add(form, exc):
    """Show a service's ValidationError on `form`: under the field it names when
    the form has that field, otherwise above the form."""
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)
