"""dkimpy's RSA work done by OpenSSL (through `cryptography`) instead of in pure Python.

dkimpy parses the DNS key record with a Python ASN.1 reader and checks RSA signatures with
Python integer arithmetic, byte by byte; on a busy listener that was a fifth of all the CPU an
email cost. dkimpy stays in charge of everything DKIM means (tags, canonicalisation, body and
header hashes, the key record's rules); only two of its building blocks are swapped:

* the key record's evaluation is cached per record, so each agency's key is parsed once, and
* the final RSASSA-PKCS1-v1_5 check runs in OpenSSL.

Both keep dkimpy's behaviour exactly (the tests compare them with dkimpy's own functions on
valid, tampered, short and odd inputs); anything OpenSSL will not take is handed back to
dkimpy's original code rather than judged differently.
"""

import functools

import dkim
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

_PURE_VERIFY = dkim.RSASSA_PKCS1_v1_5_verify
_PURE_EVALUATE = dkim.evaluate_pk
_HASHES = {"sha256": hashes.SHA256, "sha1": hashes.SHA1}


@functools.lru_cache(maxsize=4096)
def _public_key(modulus: int, exponent: int) -> rsa.RSAPublicKey:
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def verify(hash_object, signature: bytes, public_key: dict) -> bool:
    """Drop-in for dkim.crypto.RSASSA_PKCS1_v1_5_verify."""
    algorithm = _HASHES.get(hash_object.name.lower())
    modulus, exponent = public_key["modulus"], public_key["publicExponent"]
    length = (modulus.bit_length() + 7) // 8
    if algorithm is None or len(signature) > length:
        return _PURE_VERIFY(hash_object, signature, public_key)
    try:
        key = _public_key(modulus, exponent)
    except (ValueError, UnsupportedAlgorithm):  # a key OpenSSL refuses: dkimpy decides
        return _PURE_VERIFY(hash_object, signature, public_key)
    # dkimpy reads the signature as a number, so leading zero octets a signer dropped do
    # not matter to it; OpenSSL wants the full modulus length.
    signature = signature.rjust(length, b"\x00")
    try:
        key.verify(signature, hash_object.digest(), padding.PKCS1v15(), Prehashed(algorithm()))
    except InvalidSignature:
        return False
    except (ValueError, UnsupportedAlgorithm):  # e.g. a modulus too small for the digest
        return _PURE_VERIFY(hash_object, signature, public_key)
    return True


@functools.lru_cache(maxsize=4096)
def _evaluate_record(record: bytes):
    return _PURE_EVALUATE(b"", record)


def evaluate_pk(name, record):
    """Drop-in for dkim.evaluate_pk, cached per key record (errors are never cached and
    are raised with the looked-up name, as dkimpy does)."""
    if isinstance(record, bytes) and len(record) <= 8192:
        try:
            return _evaluate_record(record)
        except dkim.KeyFormatError:
            pass  # raise again below, naming the record that was looked up
    return _PURE_EVALUATE(name, record)


def install() -> None:
    """Point dkimpy's module-level names at the versions above (idempotent)."""
    dkim.RSASSA_PKCS1_v1_5_verify = verify
    dkim.evaluate_pk = evaluate_pk
