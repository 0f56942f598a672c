"""`GET /v1/templates` and `GET /v1/templates/{key}`: the newest version of every variant, by key,
channel and locale, for the roles that read definitions."""

from __future__ import annotations

import httpx

from tests.api.test_audit import key_for

HBA1C_EN = {"key": "hba1c-high", "channel": "sms", "locale": "en", "body": "Hi {{ patient.given }}"}
HBA1C_ES = {"key": "hba1c-high", "channel": "sms", "locale": "es", "body": "Hola {{ patient.given }}"}
WELCOME = {
    "key": "welcome",
    "channel": "email",
    "locale": "en-us",
    "subject": "Welcome home",
    "body": "Hello {{ patient.given }}",
    "purpose": "care_coordination",
}


async def publish(api: httpx.AsyncClient, *templates: dict[str, str]) -> None:
    for template in templates:
        answer = await api.post("/v1/templates", json=template)
        assert answer.status_code in (200, 201), answer.text


async def test_the_list_has_the_newest_version_of_each_variant_and_filters_by_key_channel_and_locale(
    api: httpx.AsyncClient,
) -> None:
    await publish(api, HBA1C_EN, HBA1C_ES, WELCOME, {**HBA1C_EN, "body": "Hello {{ patient.given }}"})

    listed = (await api.get("/v1/templates")).json()["items"]
    # The code journey's templates, registered at start, are listed like published ones.
    assert "discharge-callback-welcome" in {item["key"] for item in listed}
    items = [item for item in listed if item["key"] in ("hba1c-high", "welcome")]
    assert [(i["key"], i["channel"], i["locale"], i["version"]) for i in items] == [
        ("hba1c-high", "sms", "en", 2),
        ("hba1c-high", "sms", "es", 1),
        ("welcome", "email", "en-US", 1),
    ]
    assert items[0]["body"] == "Hello {{ patient.given }}"
    assert items[2]["subject"] == "Welcome home"
    assert items[2]["purpose"] == "care_coordination"
    assert "created_at" in items[0]

    async def keys(**filters: str) -> list[tuple[str, str]]:
        answer = await api.get("/v1/templates", params=filters)
        assert answer.status_code == 200, answer.text
        return [(item["key"], item["locale"]) for item in answer.json()["items"]]

    assert await keys(channel="email") == [("welcome", "en-US")]
    assert ("hba1c-high", "es") in await keys(locale="ES")
    assert {locale for _, locale in await keys(locale="ES")} == {"es"}
    assert await keys(key="hba1c-high", locale="en") == [("hba1c-high", "en")]
    assert await keys(key="nothing") == []
    assert (await api.get("/v1/templates", params={"channel": "fax"})).status_code == 422


async def test_a_template_is_read_with_its_variants_and_an_unknown_one_is_not_found(
    api: httpx.AsyncClient,
) -> None:
    await publish(api, HBA1C_EN, HBA1C_ES, WELCOME)

    read = (await api.get("/v1/templates/hba1c-high")).json()
    assert (read["key"], read["channels"], read["locales"]) == ("hba1c-high", ["sms"], ["en", "es"])
    assert [(v["locale"], v["body"], v["version"]) for v in read["variants"]] == [
        ("en", HBA1C_EN["body"], 1),
        ("es", HBA1C_ES["body"], 1),
    ]
    missing = await api.get("/v1/templates/nothing")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no template 'nothing'"


async def test_marketing_reads_templates_and_a_front_desk_does_not(api: httpx.AsyncClient) -> None:
    await publish(api, WELCOME)
    marketing = {"X-API-Key": await key_for(api, "marketing")}
    front_desk = {"X-API-Key": await key_for(api, "non_clinical")}
    assert (await api.get("/v1/templates/welcome", headers=marketing)).status_code == 200
    assert (await api.get("/v1/templates", headers=front_desk)).status_code == 403
