"""Who may open an agency page: members of that agency, and for some pages only its admins.

Views never look an object up by id alone; they go through `agency_object`, which scopes by the
signed-in member's agency so another agency's id is a plain 404.
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404


def member_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if request.agency is None or not request.user.is_active:
            raise PermissionDenied("This page is for agency members.")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    @wraps(view)
    @member_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_agency_admin:
            raise PermissionDenied("Only the agency's admins can do this.")
        return view(request, *args, **kwargs)

    return wrapper


def agency_object(request, model_or_queryset, **lookup):
    queryset = getattr(model_or_queryset, "objects", model_or_queryset)
    return get_object_or_404(queryset, agency=request.agency, **lookup)
