"""The dashboard's Stripe pages over the in-process control plane: an org's billing tab lists
its payments (amounts as read, credits taken back), its invoices with their links, and its
low-balance settings, each paged with its CSV; the credit packs page lists every pack, adds or
replaces one with the price typed in major units (read exactly, per currency), deletes one
after a confirmation, guards each form with the CSRF token and offers no form to a read-only
session."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from tests.unit.conftest import Control, ControlRunner
from tests.unit.control.customers.test_portal_billing import paid, put_pack
from tests.unit.control.test_ui import _csrf, _login
from tests.unit.control.test_ui_org_tabs import _alert, _forms


async def _packs(ctl: Control) -> dict[str, dict]:
    return {p["id"]: p for p in (await ctl.get("/v1/credit-packs")).json()["items"]}


def test_the_billing_tab_lists_payments_invoices_and_low_balance_with_csvs(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(name="Payer Co")
        await put_pack(ctl, "ten", 10_000_000, 1234)
        for n in range(27):  # more than a page (25)
            await paid(ctl, org["id"], f"cs_{n:02d}", taken_back=1_000_000 if n == 3 else 0)
        settings = {"threshold": 2_000_000, "pack": "ten"}
        assert (
            await ctl.put(f"/v1/orgs/{org['id']}/low-balance", json=settings)
        ).status_code == 200
        await _login(ctl)
        page = await ctl.get(f"/ui/orgs/{org['id']}/billing", token=None)
        assert page.status_code == 200
        assert page.text.count('data-payment="') == 25
        assert page.text.count('data-invoice="') == 25
        row = page.text[page.text.index('data-payment="cs_03"') :].split("</tr>")[0]
        assert "12.34 USD" in row and "10.000000" in row and "1.000000" in row and "paid" in row
        assert 'href="https://invoice.stripe.com/i/cs_26"' in page.text
        assert 'href="https://pay.stripe.com/invoice/cs_26/pdf"' in page.text
        facts = page.text[page.text.index('id="low-balance"') :].split("</dl>")[0]
        assert "2.000000" in facts and "<code>ten</code>" in facts and "off" in facts
        for what in ("payments", "invoices"):
            link = f"/ui/download?path=%2Fv1%2Forgs%2F{org['id']}%2F{what}"
            assert link in page.text, what
            csv = await ctl.get(f"/ui/download?path=/v1/orgs/{org['id']}/{what}", token=None)
            assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
            assert len(csv.text.strip().splitlines()) == 28  # a header and every row
        nav = page.text[page.text.index('aria-label="Payment pages"') :].split("</nav>")[0]
        onward = nav.split('href="')[1].split('"')[0].replace("&amp;", "&")
        query = parse_qs(urlsplit(onward).query)
        assert set(query) == {"payments_cursor"}  # the other tables stay on their first page
        second = await ctl.get(onward, token=None)
        assert second.text.count('data-payment="') == 2
        assert second.text.count('data-invoice="') == 25

    control_plane(body)


def test_an_admin_adds_replaces_and_deletes_a_pack_typed_in_major_units(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        await _login(ctl)
        page = await ctl.get("/ui/packs", token=None)
        assert page.status_code == 200 and "No credit packs yet" in page.text
        assert 'href="/ui/packs" aria-current="page"' in page.text
        form = {"csrf_token": _csrf(page), "id": "starter", "credits": "10", "currency": "usd"}
        saved = await ctl.post(
            "/ui/packs", token=None, data=form | {"amount": "12.34", "active": "on"}
        )
        assert saved.status_code == 303 and saved.headers["location"] == "/ui/packs?saved=starter"
        pack = (await _packs(ctl))["starter"]
        assert (pack["credits"], pack["amount"], pack["currency"], pack["active"]) == (
            10_000_000,
            1234,
            "usd",
            True,
        )
        listed = await ctl.get("/ui/packs?saved=starter", token=None)
        assert 'id="saved"' in listed.text and "12.34 USD" in listed.text
        yen = form | {"id": "yen", "amount": "1200", "currency": "jpy", "credits": "2.5"}
        assert (await ctl.post("/ui/packs", token=None, data=yen)).status_code == 303
        assert (await _packs(ctl))["yen"]["amount"] == 1200  # JPY has no minor unit
        assert (await _packs(ctl))["yen"]["active"] is False  # the box was left unticked
        edit = await ctl.get("/ui/packs?edit=starter", token=None)
        assert 'name="amount" inputmode="decimal" required value="12.34"' in edit.text
        replaced = await ctl.post("/ui/packs", token=None, data=form | {"amount": "9.5"})
        assert replaced.status_code == 303
        assert (await _packs(ctl))["starter"]["amount"] == 950
        for amount, said in (("1.234", "at most 2 decimals"), ("12,00", "not an amount")):
            bad = await ctl.post("/ui/packs", token=None, data=form | {"amount": amount})
            assert bad.status_code == 400 and said in _alert(bad), amount
            assert f'value="{amount}"' in bad.text  # what was typed stays
        bad_id = await ctl.post(
            "/ui/packs", token=None, data=form | {"id": "Bad Id", "amount": "1"}
        )
        assert bad_id.status_code == 400 and "pack id" in _alert(bad_id).lower()
        assert (await _packs(ctl))["starter"]["amount"] == 950
        forged = await ctl.post(
            "/ui/packs", token=None, data=form | {"csrf_token": "x", "amount": "1"}
        )
        assert forged.status_code == 403
        confirm = await ctl.get("/ui/packs/starter/delete", token=None)
        assert confirm.status_code == 200 and "Delete pack <code>starter</code>?" in confirm.text
        assert "starter" in await _packs(ctl)  # asking is not deleting
        refused = await ctl.post("/ui/packs/starter/delete", token=None, data={})
        assert refused.status_code == 403 and "starter" in await _packs(ctl)
        deleted = await ctl.post(
            "/ui/packs/starter/delete", token=None, data={"csrf_token": _csrf(confirm)}
        )
        assert deleted.status_code == 303 and "starter" not in await _packs(ctl)
        audit = (await ctl.get("/v1/audit", params={"action": "pack.delete"})).json()["items"]
        assert audit[0]["target"] == "starter"

    control_plane(body)


def test_a_read_only_session_sees_the_packs_without_a_form(control_plane: ControlRunner) -> None:
    async def body(ctl: Control) -> None:
        await put_pack(ctl, "ten", 10_000_000, 1234)
        reader = await ctl.create_admin_token(["read"])
        await _login(ctl, reader["token"])
        page = await ctl.get("/ui/packs", token=None)
        assert page.status_code == 200 and "12.34 USD" in page.text
        assert _forms(page) == [] and "Delete" not in page.text
        data = {"csrf_token": _csrf(page), "id": "ten", "credits": "1", "amount": "1"}
        refused = await ctl.post("/ui/packs", token=None, data=data | {"currency": "usd"})
        assert refused.status_code == 403 and "admin" in _alert(refused)
        assert (await _packs(ctl))["ten"]["amount"] == 1234

    control_plane(body)


def test_a_refund_form_reads_the_amount_exactly_and_shows_the_apis_refusal(
    control_plane: ControlRunner,
) -> None:
    async def body(ctl: Control) -> None:
        org = await ctl.create_org(name="Refund Co")
        await put_pack(ctl, "ten", 10_000_000, 1234)
        await paid(ctl, org["id"], "cs_refund")  # paid, with no payment intent known
        await _login(ctl)
        page = await ctl.get(f"/ui/orgs/{org['id']}/billing", token=None)
        action = f"/ui/orgs/{org['id']}/payments/cs_refund/refund"
        assert action in _forms(page)
        form = {"csrf_token": _csrf(page), "currency": "usd"}
        too_precise = await ctl.post(action, token=None, data=form | {"amount": "1.234"})
        assert too_precise.status_code == 400
        assert "Refund amount" in _alert(too_precise) and "2 decimals" in _alert(too_precise)
        refused = await ctl.post(action, token=None, data=form | {"amount": "1.00"})
        assert refused.status_code == 409 and "only a paid one" in _alert(refused)
        forged = await ctl.post(action, token=None, data={"amount": "1.00", "currency": "usd"})
        assert forged.status_code == 403
        audit = (await ctl.get("/v1/audit", params={"action": "payment.refund"})).json()
        assert audit["items"] == []
        await ctl.post("/ui/logout", token=None, data={"csrf_token": _csrf(page)})
        await _login(ctl, (await ctl.create_admin_token(["read"]))["token"])
        page = await ctl.get(f"/ui/orgs/{org['id']}/billing", token=None)
        assert page.status_code == 200 and "/refund" not in page.text  # none for a reader

    control_plane(body)
