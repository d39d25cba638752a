"""dkimpy's RSA steps run in OpenSSL: the verdicts must be exactly dkimpy's own."""

import hashlib
import os

import dkim
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from emailsync.inbound import dkim_rsa
from emailsync.inbound.authenticity import verify_dkim

from .mail import FakeDns, SigningKey, build

KEYS = {
    bits: rsa.generate_private_key(public_exponent=65537, key_size=bits) for bits in (1024, 2048)
}


class Digest:
    """What dkimpy hands the check: a hash object with a name and a digest."""

    def __init__(self, name: str, data: bytes):
        self.name, self._hash = name, hashlib.new(name, data)

    def digest(self):
        return self._hash.digest()


def sign(key, digest: Digest) -> bytes:
    algorithm = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}[digest.name]  # noqa: S303 - DKIM allows rsa-sha1
    return key.sign(digest.digest(), padding.PKCS1v15(), Prehashed(algorithm))


def public(key) -> dict:
    numbers = key.public_key().public_numbers()
    return {"modulus": numbers.n, "publicExponent": numbers.e}


def both(digest, signature, public_key) -> tuple[bool, bool]:
    ours = dkim_rsa.verify(digest, signature, public_key)
    theirs = dkim_rsa._PURE_VERIFY(digest, signature, public_key)
    return ours, theirs


@pytest.mark.parametrize("bits", [1024, 2048])
@pytest.mark.parametrize("algorithm", ["sha256", "sha1"])
def test_valid_and_tampered_signatures_get_dkimpys_verdict(bits, algorithm):
    key = KEYS[bits]
    digest = Digest(algorithm, os.urandom(40))
    signature = sign(key, digest)
    assert both(digest, signature, public(key)) == (True, True)

    flipped = bytes([signature[0] ^ 0x01]) + signature[1:]
    assert both(digest, flipped, public(key)) == (False, False)
    other = Digest(algorithm, b"another message")
    assert both(other, signature, public(key)) == (False, False)
    wrong_key = public(KEYS[2048 if bits == 1024 else 1024])
    assert both(digest, signature, wrong_key) == (False, False)


def test_odd_lengths_get_dkimpys_verdict():
    key = KEYS[1024]
    digest = Digest("sha256", b"x")
    signature = sign(key, digest)
    for odd in (b"", signature[:-1], signature + b"\x00", b"\x00" + signature, b"\xff" * 200):
        ours, theirs = both(digest, odd, public(key))
        assert ours == theirs


def test_a_signature_with_its_leading_zero_dropped_still_verifies_as_in_dkimpy():
    key = KEYS[1024]
    for n in range(5000):
        digest = Digest("sha256", n.to_bytes(4, "big"))
        signature = sign(key, digest)
        if signature[0] == 0:
            break
    else:  # pragma: no cover - 1 in 256 signatures starts with a zero octet
        pytest.fail("no signature with a leading zero octet in 5,000 tries")
    assert both(digest, signature[1:], public(key)) == (True, True)


def test_key_records_are_evaluated_like_dkimpy_and_errors_name_the_record():
    signer = SigningKey("acme.test")
    assert dkim_rsa.evaluate_pk(b"s1._domainkey.acme.test.", signer.txt) == (
        dkim_rsa._PURE_EVALUATE(b"s1._domainkey.acme.test.", signer.txt)
    )
    with pytest.raises(dkim.KeyFormatError, match="missing public key: b.s2._domainkey"):
        dkim_rsa.evaluate_pk(b"s2._domainkey.acme.test.", b"")
    with pytest.raises(dkim.KeyFormatError, match="could not parse RSA public key"):
        dkim_rsa.evaluate_pk(b"s3._domainkey.acme.test.", b"v=DKIM1; k=rsa; p=AAAA")


def test_dkimpy_uses_the_openssl_steps_and_still_tells_pass_from_fail():
    assert dkim.RSASSA_PKCS1_v1_5_verify is dkim_rsa.verify
    assert dkim.evaluate_pk is dkim_rsa.evaluate_pk
    signer = SigningKey("acme.test")
    raw = signer.sign(build())
    assert [r.passed for r in verify_dkim(raw, FakeDns(signer))] == [True]
    tampered = raw.replace(b"Congratulations", b"Commiserations")
    assert [r.passed for r in verify_dkim(tampered, FakeDns(signer))] == [False]
