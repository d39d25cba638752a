"""The agency app's working pages (under /app/). The agency always comes from the member."""

from django.urls import path

from . import activity, dashboard, email_sync, leaks, placements, reviews

review_urls = [  # mounted at /app/reviews/
    path("", reviews.board, name="agency-reviews"),
    path("get/", reviews.get_reviews, name="get-reviews"),
    path("request/", reviews.manual_request, name="manual-request"),
    path("<int:review_id>/verify/", reviews.verify, name="review-verify"),
    path("<int:review_id>/verify/new/", reviews.verify_new, name="review-verify-new"),
    path("<int:review_id>/reject/", reviews.reject, name="review-reject"),
    path("<int:review_id>/undo/", reviews.undo, name="review-undo"),
    path("invites/bulk/", reviews.invite_bulk, name="invite-bulk"),
    path("invites/<int:request_id>/edit/", reviews.invite_edit, name="invite-edit"),
    path("invites/<int:request_id>/cancel/", reviews.invite_cancel, name="invite-cancel"),
    path("invites/<int:request_id>/send/", reviews.invite_send_now, name="invite-send-now"),
]

app_urls = [  # mounted at /app/
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("activity/", activity.activity_log, name="activity-log"),
    path("activity/export.csv", activity.activity_export, name="activity-export"),
    path("placements/", placements.placement_list, name="placements"),
    path("placements/new/", placements.placement_edit, name="placement-create"),
    path("placements/search/", reviews.placement_search, name="placement-search"),
    path("placements/export.csv", placements.placement_export, name="placement-export"),
    path("placements/import/", placements.placement_import, name="placement-import"),
    path(
        "placements/import/<int:import_id>/",
        placements.placement_import_status,
        name="placement-import-status",
    ),
    path(
        "placements/verification/",
        placements.verification_settings,
        name="verification-settings",
    ),
    path("placements/<int:placement_id>/", placements.placement_edit, name="placement-edit"),
    path("email-sync/", email_sync.email_sync, name="email-sync"),
    path("email-sync/switch/", email_sync.switch, name="email-sync-switch"),
    path("email-sync/rules/", email_sync.save_settings, name="email-sync-settings"),
    path("email-sync/rotate/", email_sync.rotate, name="email-sync-rotate"),
    path("email-sync/leak/dismiss/", leaks.dismiss, name="email-sync-leak-dismiss"),
    path("email-sync/setup-test/", email_sync.setup_test_start, name="setup-test-start"),
    path("email-sync/setup-test/status/", email_sync.setup_test_status, name="setup-test-status"),
    path("email-sync/setup-test/stop/", email_sync.setup_test_stop, name="setup-test-stop"),
    path("email-sync/dns/<int:domain_id>/", email_sync.dns_check, name="email-sync-dns"),
    path(
        "email-sync/quarantine/<int:trigger_id>/release/",
        email_sync.trigger_release,
        name="trigger-release",
    ),
    path(
        "email-sync/quarantine/<int:trigger_id>/block/",
        email_sync.trigger_block,
        name="trigger-block",
    ),
    path(
        "email-sync/blocked/<int:blocked_id>/unblock/",
        email_sync.sender_unblock,
        name="sender-unblock",
    ),
    path(
        "email-sync/senders/<int:unmapped_id>/map/",
        email_sync.unmapped_map,
        name="unmapped-map",
    ),
    path("email-sync/help/", email_sync.get_help, name="email-sync-help"),
]
