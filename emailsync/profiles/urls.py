from django.urls import path

from . import agency_views, views

# Public: no account, cacheable, no cookies.
public_urls = [
    path("agencies/", views.directory, name="profiles-directory"),
    path("agencies/<slug:agency_slug>/", views.agency_page, name="profiles-agency"),
    path(
        "agencies/<slug:agency_slug>/recruiters/<slug:recruiter_slug>/",
        views.recruiter_page,
        name="profiles-recruiter",
    ),
    path("agencies/<slug:agency_slug>/widget/", views.widget, name="profiles-widget"),
    path("agencies/<slug:agency_slug>/brand.css", views.brand_css, name="profiles-brand-css"),
    path(
        "agencies/<slug:agency_slug>/reviews/<int:review_id>/report/",
        views.report,
        name="profiles-report",
    ),
    path("widget.js", views.widget_script, name="profiles-widget-script"),
    path("robots.txt", views.robots_txt, name="robots-txt"),
    path("sitemap.xml", views.sitemap_index, name="profiles-sitemap"),
    path(
        "sitemaps/<slug:section>-<int:page>.xml",
        views.sitemap_section,
        name="profiles-sitemap-section",
    ),
]

# The signed-in agency's side (under /app/profiles/): the agency comes from the member.
agency_profile_urls = [
    path("", agency_views.profile_overview, name="profiles-admin"),
    path("reviews/<int:review_id>/reply/", agency_views.reply, name="profiles-reply"),
]
