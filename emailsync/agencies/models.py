"""Agencies and their people: who belongs where, in which role, and what they may change.

The rules that protect an agency from locking itself out (the last admin) live here, on the models,
so the web pages, the CLI and the Django admin all enforce them the same way.
"""

import hashlib
import secrets
import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour like #1f6feb."))
DOMAIN = RegexValidator(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,62}[a-z0-9]$",
    _("Enter a domain such as acme-recruitment.com."),
)


# Mailbox providers anyone can sign up to. An agency domain makes mail from it the agency's
# own (its people are colleagues, never asked; with "trust the From domain alone" any sender
# on it could set off review requests), so it must be a domain the agency controls.
SHARED_MAIL_DOMAINS = frozenset(
    [
        "gmail.com",
        "outlook.fr",
        "outlook.de",
        "outlook.es",
        "outlook.it",
        "hotmail.de",
        "hotmail.es",
        "hotmail.it",
        "live.fr",
        "live.de",
        "yahoo.de",
        "yahoo.es",
        "yahoo.it",
        "yahoo.com.au",
        "gmx.at",
        "gmx.ch",
        "t-online.de",
        "sky.com",
        "virginmedia.com",
        "comcast.net",
        "verizon.net",
        "att.net",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "googlemail.com",
        "outlook.com",
        "outlook.co.uk",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "live.com",
        "live.co.uk",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "ymail.com",
        "rocketmail.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.net",
        "gmx.de",
        "web.de",
        "mail.com",
        "yandex.com",
        "yandex.ru",
        "mail.ru",
        "zoho.com",
        "zohomail.com",
        "fastmail.com",
        "tutanota.com",
        "tuta.io",
        "hey.com",
        "qq.com",
        "163.com",
        "126.com",
        "bigpond.com",
        "btinternet.com",
        # Microsoft 365's shared parents: each tenant's own domain is acme.onmicrosoft.com
        # (that one is fine), and as an agency's domain covers its subdomains, the parent
        # would take in every tenant.
        "onmicrosoft.com",
        "mail.onmicrosoft.com",
    ]
)


def validate_not_shared_mail_domain(value: str) -> None:
    if value.strip().lower().rstrip(".") in SHARED_MAIL_DOMAINS:
        raise ValidationError(
            _(
                "%(domain)s is a public mailbox provider, not your agency's own domain. Add "
                "your colleagues who send from it as team members instead."
            ),
            params={"domain": value},
        )


def validate_time_zone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(_("%(tz)s is not a known time zone."), params={"tz": value})


def unique_slug(model, base: str, field: str = "slug", fallback: str = "agency", **scope) -> str:
    # A name with no Latin letters (Arabic, Chinese…) slugifies to nothing: the URL patterns
    # take ASCII slugs only, so it gets the fallback, numbered.
    root = slugify(base)[:40].strip("-") or fallback
    slug, n = root, 1
    while model.objects.filter(**{field: slug}, **scope).exists():
        n += 1
        slug = f"{root}-{n}"
    return slug


def token_digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


class LastAdminError(ValidationError):
    """Raised when a change would leave an agency with no admin."""


class Agency(models.Model):
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=50, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    brand_colour = models.CharField(max_length=7, default="#1f6feb", validators=[HEX_COLOUR])
    logo = models.ImageField(upload_to="agency-logos/", blank=True)
    website = models.URLField(blank=True)
    location = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "agencies"
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @classmethod
    @transaction.atomic
    def create_with_admin(
        cls,
        *,
        name: str,
        admin_email: str,
        admin_name: str = "",
        password: str | None = None,
        domains: tuple[str, ...] = (),
        time_zone: str = "UTC",
    ) -> tuple["Agency", "User"]:
        """Create an agency and its first admin, the only way an agency comes to exist."""
        agency = cls(name=name.strip(), slug=unique_slug(cls, name), time_zone=time_zone)
        agency.full_clean()
        agency.save()
        for domain in domains:
            AgencyDomain.add(agency, domain)
        admin = User.objects.create_user(
            email=admin_email,
            password=password,
            full_name=admin_name or admin_email.split("@")[0],
            agency=agency,
            role=User.Role.ADMIN,
        )
        agency.record(admin, "agency.created", name)
        return agency, admin

    def members(self):
        return self.users.filter(is_active=True)

    def admins(self):
        return self.members().filter(role=User.Role.ADMIN)

    def domain_names(self) -> list[str]:
        return list(self.domains.values_list("domain", flat=True))

    def record(self, actor, action: str, subject: str = "", **detail) -> "AuditEntry":
        return AuditEntry.objects.create(
            agency=self, actor=actor, action=action, subject=str(subject)[:200], detail=detail
        )


class AgencyDomain(models.Model):
    """An email domain the agency sends from; mail from it counts as the agency's own."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(
        max_length=253, unique=True, validators=[DOMAIN, validate_not_shared_mail_domain]
    )
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["domain"]

    def __str__(self) -> str:
        return self.domain

    @property
    def is_shared_mail_domain(self) -> bool:
        """A public mailbox provider, added before such domains were refused: it counts for
        nothing (the listener ignores it) until an admin removes it."""
        return self.domain in SHARED_MAIL_DOMAINS

    @classmethod
    def add(cls, agency: Agency, domain: str) -> "AgencyDomain":
        domain = domain.strip().lower().rstrip(".")
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValidationError({"domain": _("Enter a valid domain.")}) from exc
        entry = cls(agency=agency, domain=domain)
        entry.full_clean()
        entry.save()
        return entry


class UserManager(BaseUserManager):
    use_in_migrations = True

    def create_user(self, email, password=None, **fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.full_clean(exclude=["password"])
        user.save(using=self._db)
        if user.agency_id:
            RecruiterProfile.for_user(user)
        return user

    def create_superuser(self, email, password=None, **fields):
        fields.update(is_staff=True, is_superuser=True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A person who signs in: an agency member (admin or recruiter) or an operator (staff)."""

    class Role(models.TextChoices):
        ADMIN = "admin", _("Admin")
        RECRUITER = "recruiter", _("Recruiter")

    email = models.EmailField(unique=True)
    full_name = models.CharField(max_length=120)
    agency = models.ForeignKey(
        Agency, null=True, blank=True, on_delete=models.CASCADE, related_name="users"
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.RECRUITER)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False, help_text=_("Operators of the platform."))
    date_joined = models.DateTimeField(default=timezone.now)
    session_version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text=_("Raised on every role or membership change: signs out the other sessions."),
    )

    objects = UserManager()
    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["full_name"]

    class Meta:
        ordering = ["full_name", "email"]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>"

    @property
    def is_agency_admin(self) -> bool:
        return self.is_active and self.agency_id is not None and self.role == self.Role.ADMIN

    def _get_session_auth_hash(self, secret=None) -> str:
        """Django keeps this hash in each session and compares it on every request; a session
        whose hash no longer matches is flushed (signed out). Django's own hash covers only the
        password; ours also covers what decides what the person may do — the session version
        (bumped by `change_role` and `remove_from_agency`, so even a change undone before the
        next request ends the other sessions), the role, the agency, active and staff — so a
        role changed in the Django admin or by a bulk update signs people out as well. The
        member who made the change keeps their own session with `update_session_auth_hash`."""
        state = "\x1f".join(
            [
                self.password,
                str(self.session_version),
                self.role,
                str(self.agency_id or ""),
                "1" if self.is_active else "0",
                "1" if self.is_staff else "0",
            ]
        )
        return salted_hmac(
            "emailsync.agencies.User.session_auth_hash", state, secret=secret, algorithm="sha256"
        ).hexdigest()

    def end_other_sessions(self) -> None:
        """Every existing session of this user stops working at its next request."""
        User.objects.filter(pk=self.pk).update(session_version=models.F("session_version") + 1)
        self.refresh_from_db(fields=["session_version"])

    @transaction.atomic
    def change_role(self, role: str, by: "User") -> None:
        if role not in self.Role.values:
            raise ValidationError({"role": _("Choose admin or recruiter.")})
        if role == self.role:
            return
        if self.role == self.Role.ADMIN:
            self._ensure_not_last_admin()
        was_admin = self.role == self.Role.ADMIN
        self.role = role
        self.save(update_fields=["role"])
        self.end_other_sessions()
        self.agency.record(by, "member.role_changed", self.email, role=role)
        if was_admin:
            self._withdraw_own_invitations(by)

    @transaction.atomic
    def remove_from_agency(self, by: "User") -> None:
        if self.role == self.Role.ADMIN:
            self._ensure_not_last_admin()
        agency = self.agency
        self.is_active = False
        self.save(update_fields=["is_active"])
        self.end_other_sessions()
        agency.record(by, "member.removed", self.email)
        self._withdraw_own_invitations(by)

    def _withdraw_own_invitations(self, by: "User") -> None:
        """The open invitations this member sent as an admin are withdrawn when they leave or
        stop being an admin: otherwise one sent beforehand to another address of their own
        would let them back in, in the role they had, after the agency took it away."""
        open_ones = Invitation.objects.filter(
            agency_id=self.agency_id, invited_by=self, accepted_at=None, revoked_at=None
        ).exclude(expires_at__lte=timezone.now())
        for email in open_ones.values_list("email", flat=True):
            self.agency.record(by, "member.invitation_revoked", email)
        open_ones.update(revoked_at=timezone.now())

    def _ensure_not_last_admin(self) -> None:
        # Lock the agency's admin rows so two admins demoting each other at once cannot both win.
        admins = list(
            User.objects.select_for_update()
            .filter(agency_id=self.agency_id, role=self.Role.ADMIN, is_active=True)
            .values_list("pk", flat=True)
        )
        if admins == [self.pk] or not admins:
            raise LastAdminError(_("An agency needs at least one admin."))


class RecruiterProfileQuerySet(models.QuerySet):
    def of_members(self):
        """Profiles whose person is still an active member of the profile's agency: only they
        are credited, listed or offered. A leaver's profile stays, so their history keeps its
        credit."""
        return self.filter(user__is_active=True, user__agency_id=models.F("agency_id"))


class RecruiterProfile(models.Model):
    """A member's public face and the addresses their emails come from."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="profile")
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="profiles")
    display_name = models.CharField(max_length=120)
    job_title = models.CharField(max_length=120, blank=True)
    photo = models.ImageField(upload_to="recruiter-photos/", blank=True)
    slug = models.SlugField(max_length=60)
    bio = models.TextField(blank=True, max_length=2000)
    specialisms = models.CharField(max_length=200, blank=True)

    objects = RecruiterProfileQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "slug"], name="profile_slug_per_agency")
        ]
        ordering = ["display_name"]

    def __str__(self) -> str:
        return self.display_name

    @classmethod
    def for_user(cls, user: User) -> "RecruiterProfile":
        profile = getattr(user, "profile", None) if user.pk else None
        if profile is None:
            profile = cls.objects.create(
                user=user,
                agency=user.agency,
                display_name=user.full_name,
                slug=unique_slug(cls, user.full_name, fallback="recruiter", agency=user.agency),
            )
            SenderAddress.objects.get_or_create(
                agency=user.agency, email=user.email, defaults={"profile": profile}
            )
        return profile


class SenderAddressQuerySet(models.QuerySet):
    def of_members(self):
        """Addresses whose owner is still an active member of the address's agency. A removed
        member's rows stay (their history keeps its credit), but their mail, a personal
        mailbox off the agency's domains included, no longer speaks for the agency."""
        return self.filter(
            profile__user__is_active=True, profile__user__agency_id=models.F("agency_id")
        )


class SenderAddress(models.Model):
    """An address a recruiter sends from; a trigger from it credits their reviews."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="sender_addresses")
    profile = models.ForeignKey(RecruiterProfile, on_delete=models.CASCADE, related_name="senders")
    email = models.EmailField()

    objects = SenderAddressQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agency", "email"], name="sender_unique_per_agency")
        ]
        ordering = ["email"]

    def __str__(self) -> str:
        return self.email

    def save(self, *args, **kwargs):
        self.email = self.email.strip().lower()
        super().save(*args, **kwargs)


class Invitation(models.Model):
    """A single-use, expiring link that lets someone join an agency in a role."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=User.Role.choices, default=User.Role.RECRUITER)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.email} → {self.agency}"

    @classmethod
    def issue(cls, agency: Agency, email: str, role: str, by: User) -> tuple["Invitation", str]:
        """Create an invitation; the raw token is returned once and only its hash is kept.
        Once it is sent, `replace_earlier` closes the open ones it replaces."""
        raw = secrets.token_urlsafe(32)
        invitation = cls.objects.create(
            agency=agency,
            email=email.strip().lower(),
            role=role,
            token_hash=token_digest(raw),
            invited_by=by,
            expires_at=timezone.now() + timedelta(days=settings.EMAILSYNC_INVITATION_DAYS),
        )
        agency.record(by, "member.invited", invitation.email, role=role)
        return invitation, raw

    @classmethod
    def find(cls, raw_token: str) -> "Invitation | None":
        return (
            cls.objects.select_related("agency").filter(token_hash=token_digest(raw_token)).first()
        )

    def replace_earlier(self) -> int:
        """Inviting someone again replaces their open invitation: one pending row, one live
        link (this one). Called once this one is sent, so a failed send kills no link."""
        return (
            Invitation.objects.filter(
                agency=self.agency, email=self.email, accepted_at=None, revoked_at=None
            )
            .exclude(pk=self.pk)
            .update(revoked_at=timezone.now())
        )

    @property
    def usable(self) -> bool:
        return (
            not self.accepted_at
            and not self.revoked_at
            and timezone.now() < self.expires_at
            and self.inviter_still_admin
        )

    @property
    def inviter_still_admin(self) -> bool:
        """An invitation speaks for the admin who sent it: once they are no longer an admin of
        the agency (removed or demoted, in the app or by an operator), it no longer lets anyone
        in. The app withdraws such invitations as it makes the change
        (`User._withdraw_own_invitations`); this holds for changes made elsewhere too."""
        inviter = self.invited_by
        return (
            inviter is not None and inviter.is_agency_admin and inviter.agency_id == self.agency_id
        )

    @property
    def state(self) -> str:
        if self.accepted_at:
            return "accepted"
        if self.revoked_at:
            # Inviting again closes the earlier link: that is not the agency withdrawing it.
            newer = Invitation.objects.filter(
                agency=self.agency_id,
                email=self.email,
                created_at__gt=self.created_at,
                accepted_at=None,
                revoked_at=None,
                expires_at__gt=timezone.now(),
            )
            return "replaced" if newer.exists() else "revoked"
        if not self.inviter_still_admin:
            return "revoked"
        return "pending" if timezone.now() < self.expires_at else "expired"

    @transaction.atomic
    def accept(self, full_name: str, password: str) -> User:
        # Re-read under lock: two clicks on the same link must not create two members.
        fresh = Invitation.objects.select_for_update().get(pk=self.pk)
        if not fresh.usable:
            raise ValidationError(_("This invitation has expired or was already used."))
        if User.objects.filter(email__iexact=fresh.email).exists():
            raise ValidationError(_("An account with this email already exists. Sign in instead."))
        user = User.objects.create_user(
            email=fresh.email,
            password=password,
            full_name=full_name,
            agency=fresh.agency,
            role=fresh.role,
        )
        fresh.accepted_at = timezone.now()
        fresh.save(update_fields=["accepted_at"])
        # Other open invitations to this address can no longer be used: an address is one
        # account. Closed, they leave the team page's open list.
        Invitation.objects.filter(email=fresh.email, accepted_at=None, revoked_at=None).update(
            revoked_at=fresh.accepted_at
        )
        fresh.agency.record(user, "member.joined", user.email, role=user.role)
        return user


class AuditEntry(models.Model):
    """Who did what in an agency: verification, settings, team and address changes."""

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="audit_entries")
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL)
    action = models.CharField(max_length=60)
    subject = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.action} {self.subject}"
