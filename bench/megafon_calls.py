"""One MegaFon call as the PBX sends it, for the benches: `contact`, then INCOMING, ACCEPTED,
COMPLETED and the `history` outcome, a unique caller and call id each."""

from __future__ import annotations


def call_lifecycle(
    callid: str, phone: str, token: str, *, contact: bool = True
) -> list[dict[str, str]]:
    base = {"phone": phone, "callid": callid, "crm_token": token}
    event = {**base, "cmd": "event", "user": "andy", "ext": "701", "diversion": "74950001122"}
    pushes = [
        {**event, "type": "INCOMING"},
        {**event, "type": "ACCEPTED"},
        {**event, "type": "COMPLETED"},
        {
            **base,
            "cmd": "history",
            "type": "in",
            "status": "Success",
            "user": "andy",
            "ext": "701",
            "start": "20241202T081500Z",
            "duration": "61",
            "link": f"https://vats.example/records/{callid}.mp3",
        },
    ]
    if contact:
        pushes.insert(0, {"cmd": "contact", "phone": phone, "callid": callid, "crm_token": token})
    return pushes
