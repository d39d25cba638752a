from django.conf import settings
from django.contrib import admin
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from emailsync.agencies.urls import account_urls, agency_urls
from emailsync.api.urls import api_admin_urls, api_urls
from emailsync.operations.urls import operations_urls
from emailsync.privacy.urls import urlpatterns as privacy_urls
from emailsync.profiles.urls import agency_profile_urls
from emailsync.profiles.urls import public_urls as profile_urls
from emailsync.review_requests.unsubscribe import urlpatterns as unsubscribe_urls
from emailsync.reviews.urls import agency_review_urls, reviewer_urls
from emailsync.workspace.urls import app_urls, review_urls


def favicon(request):
    """Browsers ask for /favicon.ico whatever a page links; each got a 404. The static URL is
    worked out per request: with hashed static files it needs the manifest, not at import."""
    return HttpResponsePermanentRedirect(static("img/icon.svg"))


admin.site.site_header = "Email Sync operators"
admin.site.site_title = "Email Sync operators"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="agency-home", permanent=False)),
    path("favicon.ico", favicon, name="favicon"),
    path("accounts/", include(account_urls)),
    path("app/", include(agency_urls)),
    path("app/reviews/", include(agency_review_urls)),
    path("app/reviews/", include(review_urls)),
    path("app/", include(app_urls)),
    path("app/profiles/", include(agency_profile_urls)),
    path("app/api/", include(api_admin_urls)),
    path("api/v1/", api_urls),
    path("admin/", admin.site.urls),
    path("anymail/", include("emailsync.api.esp_urls")),
    *unsubscribe_urls,
    *privacy_urls,
    *operations_urls,
    *reviewer_urls,
    *profile_urls,
]

if settings.DEBUG:
    from django.views.static import serve

    urlpatterns.append(path("media/<path:path>", serve, {"document_root": settings.MEDIA_ROOT}))
