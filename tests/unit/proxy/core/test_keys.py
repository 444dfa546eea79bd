import pytest

from proxy.core import keys


def test_generated_key_parses_and_verifies() -> None:
    key, phc = keys.generate_key("live")
    parsed = keys.parse_key(key)
    assert parsed is not None
    assert parsed.environment == "live"
    assert key.startswith(f"nk_live_{parsed.key_id}_")
    assert phc.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert keys.verify_secret(phc, key)
    assert not keys.verify_secret(phc, key[:-1] + ("A" if key[-1] != "A" else "B"))


def test_test_keys_and_rotation_keep_the_id() -> None:
    key, _ = keys.generate_key("test")
    parsed = keys.parse_key(key)
    assert parsed is not None and parsed.environment == "test"
    rotated, _ = keys.generate_key("test", parsed.key_id)
    again = keys.parse_key(rotated)
    assert again is not None
    assert again.key_id == parsed.key_id and again.secret != parsed.secret


def test_secret_carries_at_least_128_bits() -> None:
    import math

    assert keys.SECRET_LENGTH * math.log2(len(keys.ALPHABET)) >= 128


@pytest.mark.parametrize(
    "mutate",
    [
        lambda k: k[:-1] + ("x" if k[-1] != "x" else "y"),  # checksum
        lambda k: k[:20] + ("Z" if k[20] != "Z" else "Y") + k[21:],  # a secret char
        lambda k: k.replace("nk_live_", "nk_prod_"),
        lambda k: k[:-2],
        lambda k: k + "0",
        lambda k: k.replace("_", "-"),
        lambda k: "",
        lambda k: k[:30] + "!" + k[31:],
    ],
)
def test_malformed_keys_are_refused_without_lookup(mutate) -> None:
    key, _ = keys.generate_key("live")
    assert keys.parse_key(mutate(key)) is None


def test_fingerprint_is_sha256_and_not_the_key() -> None:
    key, _ = keys.generate_key()
    fp = keys.fingerprint(key)
    assert len(fp) == 64 and key not in fp
    assert fp == keys.fingerprint(key)
