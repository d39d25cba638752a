"""Build trigger emails the way real mail clients do, and sign them with DKIM keys made here."""

import base64
import email.utils
import itertools
from email.message import EmailMessage

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

_ids = itertools.count(1)

# DKIM's four (header, body) canonicalisations, RFC 6376 3.4.
CANONICALIZATIONS = [
    (b"relaxed", b"relaxed"),
    (b"simple", b"simple"),
    (b"relaxed", b"simple"),
    (b"simple", b"relaxed"),
]


def build(
    *,
    sender="Sam Carter <sam@acme.test>",
    to=("Cara Candidate <cara@candidate.test>",),
    cc=(),
    subject="Welcome to your new role",
    body="Hi Cara,\n\nCongratulations on the new job! Your first day is Monday.\n\nSam\n",
    html=None,
    message_id=None,
    date=None,
    extra_headers=(),
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    if to:
        message["To"] = ", ".join(to)
    if cc:
        message["Cc"] = ", ".join(cc)
    message["Subject"] = subject
    message["Date"] = date or email.utils.formatdate(localtime=False)
    message["Message-ID"] = message_id or f"<trigger-{next(_ids)}@mail.acme.test>"
    for name, value in extra_headers:
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message.as_bytes(policy=message.policy.clone(linesep="\r\n"))


class SigningKey:
    """A DKIM signing key (RSA here) and the DNS TXT record that publishes it, for dkimpy's
    injected dnsfunc."""

    algorithm = b"rsa-sha256"

    def __init__(self, domain: str, selector: str = "s1", bits: int = 1024):
        self.domain, self.selector = domain, selector
        key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        public_der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.private_key = self.private_pem  # as dkim.sign takes it for this key type
        self.txt = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public_der)

    def sign(self, raw: bytes) -> bytes:
        signature = dkim.sign(
            raw,
            self.selector.encode(),
            self.domain.encode(),
            self.private_key,
            include_headers=[b"from", b"to", b"cc", b"subject", b"date", b"message-id"],
            signature_algorithm=self.algorithm,
        )
        return signature + raw


class Ed25519SigningKey(SigningKey):
    """An Ed25519 key (RFC 8463) and its DNS TXT record: what a sender that signs with
    Ed25519, alone or beside RSA, publishes. dkimpy signs and verifies these through PyNaCl."""

    algorithm = b"ed25519-sha256"

    def __init__(self, domain: str, selector: str = "ed1"):
        import nacl.signing  # a runtime dependency: dkimpy needs it to verify such signatures

        self.domain, self.selector = domain, selector
        key = nacl.signing.SigningKey.generate()
        self.private_key = base64.b64encode(bytes(key))  # the seed, as dkim.sign takes it
        self.txt = b"v=DKIM1; k=ed25519; p=" + base64.b64encode(bytes(key.verify_key))


class FakeDns:
    """Answers TXT lookups for the keys it was given; everything else does not exist."""

    def __init__(self, *keys: SigningKey):
        self.records = {f"{k.selector}._domainkey.{k.domain}.".encode(): k.txt for k in keys}
        self.lookups = 0

    def add(self, key: SigningKey):
        self.records[f"{key.selector}._domainkey.{key.domain}.".encode()] = key.txt

    def __call__(self, name: bytes, timeout: int = 5):
        self.lookups += 1
        name = name if name.endswith(b".") else name + b"."
        return self.records.get(name.lower())
