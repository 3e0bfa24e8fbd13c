"""Who takes over at the next rotation. Pure: it reads roles, it writes nothing.

The navigator takes the keyboard, the next person in the rotation order starts
navigating, and whoever leaves driving or navigating takes over the role the
newcomers left (note-taker, log watcher…), so no role falls empty.
"""

from __future__ import annotations

from dataclasses import dataclass

from sessions_app.models import Participant

Role = Participant.Role


@dataclass(frozen=True)
class Handover:
    driver: Participant
    navigator: Participant
    roles: dict[int, str]  # participant id -> role after the rotation, for those who change

    @property
    def summary(self) -> str:
        return (
            f"{self.driver.user.get_username()} drives, "
            f"{self.navigator.user.get_username()} navigates"
        )


def next_handover(order: list[Participant]) -> Handover | None:
    """`order` is the session's participants in rotation order."""
    if len(order) < 2:
        return None
    driver = next((p for p in order if p.role == Role.DRIVER), None)
    navigator = next((p for p in order if p.role == Role.NAVIGATOR), None)

    def after(person: Participant) -> Participant:
        return order[(order.index(person) + 1) % len(order)]

    if navigator is not None:
        new_driver = navigator
    elif driver is not None:
        new_driver = after(driver)
    else:
        new_driver = order[0]
    new_navigator = after(new_driver)

    roles = {new_driver.pk: Role.DRIVER.value, new_navigator.pk: Role.NAVIGATOR.value}
    newcomers = (new_driver, new_navigator)
    displaced = [p for p in (driver, navigator) if p is not None and p not in newcomers]
    vacated = [p.role for p in newcomers if p.role not in (Role.DRIVER, Role.NAVIGATOR)]
    for person in displaced:
        roles[person.pk] = vacated.pop(0) if vacated else Role.OBSERVER.value
    changed = {pk: role for pk, role in roles.items() if _role_of(order, pk) != role}
    return Handover(driver=new_driver, navigator=new_navigator, roles=changed)


def _role_of(order: list[Participant], pk: int) -> str:
    return next(p.role for p in order if p.pk == pk)
