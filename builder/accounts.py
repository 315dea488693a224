"""[[user]] and [[group]] tables: names for the services' users and groups, and the
/etc/passwd and /etc/group the builder writes for them (so `ls -l` and services that look up
names work on the device). Resolved to numbers here: the init itself only sees numbers.

    [[group]]                 [[user]]
    name = "gpio"             name = "app"
    gid = 997                 uid = 1000
                              group = "app"       # primary; default: a group named like the
                              groups = ["gpio"]   # user, gid = uid; `groups`: supplementary
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hostkit.errors import BuildError
from init.errors import did_you_mean

HINT = "docs/config.md describes [[user]] and [[group]]"
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")
MAX_ID = 65533  # 65534 is nobody, 65535 is (uid_t)-1 on 16-bit-aware tools


@dataclass(frozen=True)
class User:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class Accounts:
    users: dict[str, User] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)

    def passwd(self) -> bytes:
        lines = ["root:x:0:0:root:/:/bin/false"]
        lines += [f"{u.name}:x:{u.uid}:{u.gid}::/:/bin/false" for u in self.users.values()]
        return ("\n".join(lines) + "\n").encode()

    def group(self) -> bytes:
        lines = ["root:x:0:"]
        for name, gid in self.groups.items():
            members = sorted(u.name for u in self.users.values() if gid in u.groups)
            lines.append(f"{name}:x:{gid}:{','.join(members)}")
        return ("\n".join(lines) + "\n").encode()


def _fail(source: str, where: str, key: str, value: object, problem: str) -> BuildError:
    shown = f'"{value}"' if isinstance(value, str) else repr(value)
    return BuildError(f"{source}: {where} {key} = {shown}: {problem}", HINT)


def _name(table: dict, source: str, where: str) -> str:
    name = table.get("name")
    if not isinstance(name, str) or not name or not set(name) <= NAME_CHARS or name[0] == "-":
        raise _fail(
            source, where, "name", name, "expected a lower-case name (letters, digits, _ and -)"
        )
    return name


def _id(table: dict, key: str, source: str, where: str) -> int:
    value = table.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ID:
        raise _fail(source, where, key, value, f"expected a number from 1 to {MAX_ID}")
    return value


def _known(table: dict, keys: tuple[str, ...], source: str, where: str) -> None:
    for key in table:
        if key not in keys:
            raise BuildError(
                f"{source}: {where} {key}: unknown key" + did_you_mean(key, keys), HINT
            )


def parse(doc: dict, source: str) -> Accounts:
    groups: dict[str, int] = {"root": 0}
    for index, table in enumerate(doc.get("group", [])):
        where = f"[group #{index + 1}]"
        if not isinstance(table, dict):
            raise _fail(source, where, "", table, "expected a table")
        _known(table, ("name", "gid"), source, where)
        name = _name(table, source, where)
        where = f"[group.{name}]"
        if name in groups:
            raise _fail(source, where, "name", name, "another group has this name")
        gid = _id(table, "gid", source, where)
        if gid in groups.values():
            raise _fail(source, where, "gid", gid, "another group has this number")
        groups[name] = gid
    users: dict[str, User] = {}
    pending: list[tuple[str, int, str, list[str], str]] = []
    for index, table in enumerate(doc.get("user", [])):
        where = f"[user #{index + 1}]"
        if not isinstance(table, dict):
            raise _fail(source, where, "", table, "expected a table")
        _known(table, ("name", "uid", "group", "groups"), source, where)
        name = _name(table, source, where)
        where = f"[user.{name}]"
        if name in users or name in (p[0] for p in pending) or name == "root":
            raise _fail(source, where, "name", name, "another user has this name")
        uid = _id(table, "uid", source, where)
        primary = table.get("group", name)
        extra = table.get("groups", [])
        if (
            not isinstance(primary, str)
            or not isinstance(extra, list)
            or not all(isinstance(g, str) for g in extra)
        ):
            raise _fail(source, where, "groups", extra, "expected group names")
        if primary == name and name not in groups:
            groups[name] = uid  # the user's own group, as useradd makes it
        pending.append((name, uid, primary, extra, where))
    for name, uid, primary, extra, where in pending:
        for group in (primary, *extra):
            if group not in groups:
                raise _fail(
                    source,
                    where,
                    "group" if group == primary else "groups",
                    group,
                    "no such [[group]]" + did_you_mean(group, groups),
                )
        users[name] = User(name, uid, groups[primary], tuple(groups[g] for g in extra))
    return Accounts({**users}, {k: v for k, v in groups.items() if k != "root"})


def resolve_service(table: dict, accounts: Accounts, source: str, where: str) -> dict:
    """A [[service]] table with `user` and `group` names turned into numbers and the user's
    supplementary groups added; numbers pass through."""
    out = dict(table)
    user = table.get("user")
    if isinstance(user, str):
        if user not in accounts.users:
            raise _fail(
                source, where, "user", user, "no such [[user]]" + did_you_mean(user, accounts.users)
            )
        account = accounts.users[user]
        out["user"] = account.uid
        out.setdefault("group", account.gid)
        out["groups"] = list(account.groups)
    group = out.get("group")
    if isinstance(group, str):
        if group not in accounts.groups:
            raise _fail(
                source,
                where,
                "group",
                group,
                "no such [[group]]" + did_you_mean(group, accounts.groups),
            )
        out["group"] = accounts.groups[group]
    return out
