"""Signed-note vectors: golang.org/x/mod sumdb/note, C2SP examples, transparency-dev/formats."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from vectorlib import b64, load, require

from carewall.errors import CarewallError, InputError, VerificationError
from carewall.ledger.checkpoint import open_checkpoint, parse_checkpoint
from carewall.ledger.note import (
    ALG_COSIGNATURE_V1,
    ALG_ECDSA,
    ALG_ED25519,
    ALG_RFC6962,
    Signer,
    Verifier,
    cosignature_timestamp,
    key_id,
    open_note,
    parse_note,
    sign_note,
)

NOTE = require("note")
XMOD = load(NOTE / "golang-x-mod-sumdb-note.json")
C2SP = load(NOTE / "c2sp-examples.json")
FORMATS = load(NOTE / "transparency-dev-formats.json")

PETER = XMOD["keys"]["PeterNeumann"]
ENOCH_VKEY = XMOD["keys"]["EnochRoot"]["vkey"]
VERIFIERS = {
    "PeterNeumann": Verifier.from_vkey(PETER["vkey"]),
    "EnochRoot": Verifier.from_vkey(ENOCH_VKEY),
}


# --- golang.org/x/mod/sumdb/note ---------------------------------------------------------


def test_xmod_skey_roundtrip_and_vkey() -> None:
    s = Signer.from_skey(PETER["skey"])
    assert s.name == "PeterNeumann"
    assert s.key_id.hex() == "c74f20a3"
    assert s.skey() == PETER["skey"]
    assert s.vkey() == PETER["vkey"]


def test_xmod_sign_is_byte_exact() -> None:
    s = Signer.from_skey(PETER["skey"])
    assert sign_note(XMOD["text"], [s]) == XMOD["signed_note_peter"]


def test_xmod_enoch_zero_seed_key_reproduces_signature_line() -> None:
    seed_skey = "PRIVATE+KEY+EnochRoot+af0cfe78+" + base64.b64encode(b"\x01" + bytes(32)).decode()
    enoch = Signer.from_skey(seed_skey)
    assert enoch.vkey() == ENOCH_VKEY
    signed = sign_note(XMOD["text"], [enoch])
    assert signed.endswith(XMOD["signature_lines"]["EnochRoot"])


@pytest.mark.parametrize("case", XMOD["expect"], ids=lambda c: c["desc"].split(" ->")[0])
def test_xmod_open(case: dict[str, Any]) -> None:
    verifiers = [VERIFIERS[n] for n in case["verifiers"]]
    if case["ok"]:
        note = open_note(case["note"], verifiers)
        assert note.text == XMOD["text"]
        assert len(note.signatures) == 2
        assert sorted(s.name for s in note.verified) == sorted(case["verifiers"])
    else:
        with pytest.raises(VerificationError):
            open_note(case["note"], verifiers)


def test_xmod_bad_signature_names_the_key() -> None:
    bad = XMOD["expect"][3]["note"]
    with pytest.raises(VerificationError, match="invalid signature for key PeterNeumann"):
        open_note(bad, [VERIFIERS["PeterNeumann"]])


@pytest.mark.parametrize("vkey", XMOD["bad_vkeys"], ids=["bad-material", "bad-alg"])
def test_xmod_bad_vkeys(vkey: str) -> None:
    with pytest.raises(InputError):
        Verifier.from_vkey(vkey)


@pytest.mark.parametrize(
    "msg",
    [b64(m) for m in XMOD["bad_messages_b64"]],
    ids=[
        "no-sigs",
        "blank-sig-block",
        "no-final-newline",
        "control-char",
        "bad-utf8",
        "name-with-space",
        "trailing-line",
    ],
)
def test_xmod_malformed(msg: bytes) -> None:
    with pytest.raises(VerificationError, match="malformed note"):
        open_note(msg, [VERIFIERS["PeterNeumann"]])


def test_xmod_more_than_100_signatures_is_malformed() -> None:
    line = XMOD["signature_lines"]["PeterNeumann"]
    ok = XMOD["text"] + "\n" + line * 100
    assert len(open_note(ok, [VERIFIERS["PeterNeumann"]]).signatures) == 100
    with pytest.raises(VerificationError, match="malformed note"):
        open_note(XMOD["text"] + "\n" + line * 101, [VERIFIERS["PeterNeumann"]])


# --- C2SP examples -----------------------------------------------------------------------


def test_c2sp_signed_note_example_verifies() -> None:
    ex = C2SP["signed_note_example"]
    v = Verifier.from_vkey(ex["vkey"])
    note = open_note(ex["note"], [v])
    assert note.text == "This is an example message.\n"
    assert [s.name for s in note.verified] == ["example.com/foo"]


def test_c2sp_quasimodo_parses() -> None:
    note = parse_note(C2SP["signed_note_quasimodo"]["note"])
    assert note.text.endswith("ed è subito sera.\n")
    assert "\n\n" in note.text  # a blank line inside the text is allowed
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]


def test_c2sp_checkpoint_examples_parse() -> None:
    for key in ("checkpoint_example", "cosigned_checkpoint_example"):
        cp = parse_checkpoint(parse_note(C2SP[key]["note"]).text)
        assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
        assert len(cp.root) == 32


def test_c2sp_cosignature_line_matches_signed_message() -> None:
    note = parse_note(C2SP["cosigned_checkpoint_example"]["note"])
    witness = note.signatures[1]
    assert witness.name == "witness.example.com/w1"
    ts = cosignature_timestamp(witness.sig)
    assert C2SP["cosignature_v1_signed_message_example"] == (
        f"cosignature/v1\ntime {ts}\n" + note.text
    )


def test_c2sp_witness_request_embeds_a_checkpoint() -> None:
    body = C2SP["witness_add_checkpoint_request_example"]
    head, _, signed = body.partition("\n\n")
    assert head.startswith("old 20852014\n")
    note = parse_note(signed)
    assert parse_checkpoint(note.text).size == 20852163
    assert [s.name for s in note.signatures] == ["example.com/behind-the-sofa"] * 2


# --- transparency-dev/formats ------------------------------------------------------------

PAIRS = FORMATS["ed25519_key_pairs_log_note_test"]


@pytest.mark.parametrize("who", ["log", "known1", "known2", "unknown"])
def test_formats_ed25519_pairs(who: str) -> None:
    signer = Signer.from_skey(PAIRS[f"{who}SK"])
    assert signer.vkey() == PAIRS[f"{who}VK"]
    v = Verifier.from_vkey(PAIRS[f"{who}VK"])
    assert (v.name, v.key_id, v.alg) == (signer.name, signer.key_id, ALG_ED25519)
    assert v.verify("hello\n", signer.sign("hello\n"))
    assert not v.verify("hello!\n", signer.sign("hello\n"))


@pytest.mark.parametrize(
    "case", FORMATS["ecdsa_signed_notes"]["cases"], ids=lambda c: c["name"].replace(" ", "-")
)
def test_formats_ecdsa_notes(case: dict[str, Any]) -> None:
    v = Verifier.from_vkey(case["vkey"])
    assert v.alg == ALG_ECDSA
    if case["wantErr"]:
        with pytest.raises(VerificationError):
            open_note(case["note"], [v])
    else:
        assert len(open_note(case["note"], [v]).verified) == 1


def test_formats_ecdsa_key_id_is_spki_hash() -> None:
    case = FORMATS["ecdsa_signed_notes"]["cases"][0]
    spki = b64(case["vkey"].split("+", 2)[2])[1:]
    assert Verifier.from_vkey(case["vkey"]).key_id == hashlib.sha256(spki).digest()[:4]


RFC6962 = FORMATS["rfc6962_note_signatures"]


def test_formats_rfc6962_rome_checkpoint_verifies() -> None:
    v = Verifier.from_vkey(RFC6962["rome_2024h1_vkey"])
    assert v.alg == ALG_RFC6962
    log_id = hashlib.sha256(b64(RFC6962["rome_2024h1_spki_der_b64"])).digest()
    # The key ID hashes the RFC 6962 log ID (SHA-256 of the SPKI), not the SPKI itself.
    assert v.key_id == key_id(v.name, b"\x05" + log_id)
    cp = open_checkpoint(RFC6962["rome_2024h1_checkpoint"], [v])
    assert (cp.origin, cp.size) == ("rome.ct.filippo.io/2024h1", 115474666)


def test_formats_rfc6962_rome_tampered_size_fails() -> None:
    v = Verifier.from_vkey(RFC6962["rome_2024h1_vkey"])
    bad = RFC6962["rome_2024h1_checkpoint"].replace("115474666", "115474667")
    with pytest.raises(VerificationError, match="invalid signature"):
        open_checkpoint(bad, [v])


def test_formats_rfc6962_argon_sth_verifies_as_a_note_signature() -> None:
    sth = json.loads(RFC6962["argon2024_sth_json"])
    v = Verifier.from_vkey(RFC6962["argon2024_vkey"])
    assert v.from_vkey(RFC6962["static_ct_vkey_from_note_verifier_test"]).key_id == v.key_id
    text = f"{v.name}\n{sth['tree_size']}\n{sth['sha256_root_hash']}\n"
    sig = sth["timestamp"].to_bytes(8, "big") + b64(sth["tree_head_signature"])
    assert v.verify(text, sig)
    assert not v.verify(text.replace(str(sth["tree_size"]), "1"), sig)


@pytest.mark.parametrize(
    "case", FORMATS["cosignature_vkeys"][:2], ids=["ed25519-as-cosigner", "native-cosignature-v1"]
)
def test_formats_cosignature_vkeys_parse(case: dict[str, Any]) -> None:
    v = Verifier.from_vkey(case["vkey"])
    assert v.key_id.hex() == case["vkey"].split("+")[1]
    assert v.alg in (ALG_ED25519, ALG_COSIGNATURE_V1)


def test_formats_mldsa_vkey_is_refused_as_unsupported() -> None:
    with pytest.raises(InputError, match="not supported"):
        Verifier.from_vkey(FORMATS["cosignature_vkeys"][2]["vkey"])


def test_formats_cosignature_timestamp() -> None:
    ts = FORMATS["cosignature_v1_timestamp"]
    assert cosignature_timestamp(b64(ts["sig_b64"])[4:]) == ts["want_unix"]


def test_unknown_signature_types_are_ignored_not_errors() -> None:
    # A note carrying ECDSA, cosignature and Ed25519 lines opens with only the Ed25519 key.
    signer = Signer.from_skey(PAIRS["logSK"])
    text = "Log\n1\n" + base64.b64encode(bytes(32)).decode() + "\n"
    signed = sign_note(text, [signer])
    ecdsa_line = FORMATS["ecdsa_signed_notes"]["cases"][0]["note"].split("\n\n")[1]
    cosig_line = C2SP["cosigned_checkpoint_example"]["note"].split("\n")[-2] + "\n"
    note = open_note(signed + ecdsa_line + cosig_line, [signer.verifier()])
    assert len(note.signatures) == 3
    assert [s.name for s in note.verified] == ["Log"]


def test_a_failure_here_is_a_carewall_error() -> None:
    with pytest.raises(CarewallError):
        open_note(XMOD["signed_note_peter"], [])
