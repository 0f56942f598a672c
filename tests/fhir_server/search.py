"""FHIR search on the test server's store: parameter definitions, matching, sorting and `_include` /
`_revinclude`. A query is a list of (name, value) pairs; comma-separated values are ORed and repeated
parameters ANDed, as in FHIR. A parameter the server does not know is a `SearchError` (400)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from tests.fhir_server.store import Store, reference_of

Kind = Literal["token", "reference", "date", "string"]
PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb")
# Parameters that shape the answer rather than filter it.
CONTROL = frozenset(
    {"_count", "_sort", "_include", "_revinclude", "_summary", "_total", "_format", "_pretty", "_elements"}
)
SORTABLE = ("date", "_lastUpdated", "_id")
_DATE_PATHS = (
    "effectiveDateTime",
    "effectivePeriod.start",
    "effectiveInstant",
    "period.start",
    "authoredOn",
    "performedDateTime",
    "performedPeriod.start",
    "occurrenceDateTime",
    "onsetDateTime",
    "recordedDate",
    "issued",
    "created",
    "billablePeriod.start",
    "date",
    "sent",
    "start",
)


class SearchError(ValueError):
    """The search cannot be run as asked (unknown parameter, bad value); answered with 400."""


@dataclass(frozen=True)
class Param:
    """A search parameter: its type and the element paths (dotted, lists flattened) it reads."""

    kind: Kind
    paths: tuple[str, ...]
    target: str | None = None


_CLINICAL: dict[str, Param] = {
    "patient": Param("reference", ("subject", "patient", "beneficiary"), "Patient"),
    "subject": Param("reference", ("subject",)),
    "encounter": Param("reference", ("encounter", "context"), "Encounter"),
    "code": Param("token", ("code", "vaccineCode", "medicationCodeableConcept")),
    "status": Param("token", ("status",)),
    "identifier": Param("token", ("identifier",)),
    "date": Param("date", _DATE_PATHS),
    "category": Param("token", ("category",)),
}
_PER_TYPE: dict[str, dict[str, Param]] = {
    "Patient": {
        "identifier": Param("token", ("identifier",)),
        "gender": Param("token", ("gender",)),
        "birthdate": Param("date", ("birthDate",)),
        "family": Param("string", ("name.family",)),
        "given": Param("string", ("name.given",)),
        "name": Param("string", ("name.family", "name.given", "name.text")),
        "general-practitioner": Param("reference", ("generalPractitioner",)),
        "organization": Param("reference", ("managingOrganization",), "Organization"),
    },
    "MedicationRequest": {
        **_CLINICAL,
        "medication": Param("reference", ("medicationReference",), "Medication"),
        "intent": Param("token", ("intent",)),
        "requester": Param("reference", ("requester",)),
    },
    "Encounter": {
        **_CLINICAL,
        "class": Param("token", ("class",)),
        "type": Param("token", ("type",)),
        "participant": Param("reference", ("participant.individual",)),
        "service-provider": Param("reference", ("serviceProvider",), "Organization"),
    },
    "Subscription": {
        "status": Param("token", ("status",)),
        "url": Param("string", ("channel.endpoint",)),
        "criteria": Param("string", ("criteria",)),
        "type": Param("token", ("channel.type",)),
    },
    "Group": {"member": Param("reference", ("member.entity",)), "code": Param("token", ("code",))},
}
_PATIENT_PARAMS = ("patient", "subject")


def params_of(resource_type: str) -> dict[str, Param]:
    """The search parameters a type supports, besides `_id` and `_lastUpdated`."""
    return _PER_TYPE.get(resource_type, _CLINICAL)


def values_at(resource: Any, path: str) -> list[Any]:
    """The values at a dotted path; lists are flattened at every step."""
    nodes = [resource]
    for step in path.split("."):
        found: list[Any] = []
        for node in nodes:
            value = node.get(step) if isinstance(node, dict) else None
            if isinstance(value, list):
                found.extend(value)
            elif value is not None:
                found.append(value)
        nodes = found
    return nodes


def parse_datetime(text: str) -> tuple[datetime, datetime]:
    """A FHIR date, dateTime or instant as the range [start, end) it covers (naive times are UTC)."""
    text = text.strip()
    try:
        if len(text) == 4:
            start = datetime(int(text), 1, 1, tzinfo=UTC)
            return start, start.replace(year=start.year + 1)
        if len(text) == 7:
            start = datetime(int(text[:4]), int(text[5:7]), 1, tzinfo=UTC)
            end = (
                start.replace(year=start.year + 1, month=1)
                if start.month == 12
                else start.replace(month=start.month + 1)
            )
            return start, end
        if len(text) == 10:
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return start, start + timedelta(days=1)
        head, dot, tail = text.partition(".")
        if dot:  # at most six fractional digits for fromisoformat
            digits = "".join(c for c in tail if c.isdigit())
            tail = digits[:6] + tail[len(digits) :]
            text = f"{head}.{tail}"
        start = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise SearchError(f"{text!r} is not a FHIR date") from error
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    return start, start + timedelta(microseconds=1) if dot else start + timedelta(seconds=1)


def _date_value(value: Any) -> datetime | None:
    if isinstance(value, dict):
        value = value.get("start")
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)[0]
    except SearchError:
        return None


def resource_date(resource: dict[str, Any], paths: Sequence[str] = _DATE_PATHS) -> datetime | None:
    """The first date the resource has at one of the paths (a Period counts by its start)."""
    for path in paths:
        for value in values_at(resource, path):
            if (moment := _date_value(value)) is not None:
                return moment
    return None


def _date_matches(moment: datetime, prefix: str, low: datetime, high: datetime) -> bool:
    return {
        "eq": low <= moment < high,
        "ne": not low <= moment < high,
        "gt": moment >= high,
        "sa": moment >= high,
        "ge": moment >= low,
        "lt": moment < low,
        "eb": moment < low,
        "le": moment < high,
    }[prefix]


def _token_matches(element: Any, wanted: str) -> bool:
    system, bar, code = wanted.partition("|")
    if not bar:
        system, code = "", wanted
    candidates: list[tuple[str | None, str | None]] = []
    if isinstance(element, str | bool):
        candidates.append((None, str(element).lower() if isinstance(element, bool) else element))
    elif isinstance(element, dict):
        codings = element.get("coding") if "coding" in element else [element]
        for coding in codings or []:
            if isinstance(coding, dict):
                candidates.append((coding.get("system"), coding.get("code") or coding.get("value")))
    for found_system, found_code in candidates:
        if bar and system and found_system != system:
            continue
        if bar and not system and wanted.startswith("|") and found_system:
            continue
        if not code or found_code == code:
            return True
    return False


def _reference_matches(element: Any, wanted: str, target: str | None) -> bool:
    reference = reference_of(element)
    if reference is None:
        return False
    wanted_parts = [part for part in wanted.split("/") if part]
    if "_history" in wanted_parts:
        wanted_parts = wanted_parts[: wanted_parts.index("_history")]
    if len(wanted_parts) >= 2:
        return reference == "/".join(wanted_parts[-2:])
    if target is not None:
        return reference == f"{target}/{wanted}"
    return reference.split("/")[-1] == wanted


def _string_matches(element: Any, wanted: str) -> bool:
    return isinstance(element, str) and element.lower().startswith(wanted.lower())


@dataclass(frozen=True)
class Filter:
    """One search parameter occurrence: any of its values must match."""

    name: str
    param: Param | None
    values: tuple[str, ...]

    def matches(self, resource: dict[str, Any]) -> bool:
        """Whether the resource satisfies this parameter."""
        if self.name == "_id":
            return str(resource.get("id")) in self.values
        if self.name == "_lastUpdated":
            return any(self._date(resource, ("meta.lastUpdated",), value) for value in self.values)
        assert self.param is not None
        if self.param.kind == "date":
            return any(self._date(resource, self.param.paths, value) for value in self.values)
        elements = [element for path in self.param.paths for element in values_at(resource, path)]
        for value in self.values:
            for element in elements:
                if self.param.kind == "token" and _token_matches(element, value):
                    return True
                if self.param.kind == "reference" and _reference_matches(element, value, self.param.target):
                    return True
                if self.param.kind == "string" and _string_matches(element, value):
                    return True
        return False

    @staticmethod
    def _date(resource: dict[str, Any], paths: Sequence[str], value: str) -> bool:
        prefix = value[:2] if value[:2] in PREFIXES else "eq"
        low, high = parse_datetime(value[2:] if value[:2] in PREFIXES else value)
        moments = [_date_value(found) for path in paths for found in values_at(resource, path)]
        return any(moment is not None and _date_matches(moment, prefix, low, high) for moment in moments)


@dataclass(frozen=True)
class Link:
    """An `_include` / `_revinclude` value: `Source:param` or `Source:param:Target`."""

    source: str
    param: str
    target: str | None


@dataclass
class Query:
    """A parsed search."""

    resource_type: str
    filters: list[Filter] = field(default_factory=list)
    sort: list[str] = field(default_factory=list)
    count: int | None = None
    includes: list[Link] = field(default_factory=list)
    revincludes: list[Link] = field(default_factory=list)
    summary_count: bool = False

    def matches(self, resource: dict[str, Any]) -> bool:
        """Whether a resource of the searched type satisfies every filter."""
        return resource.get("resourceType") == self.resource_type and all(
            f.matches(resource) for f in self.filters
        )


def _link(value: str, name: str) -> Link:
    parts = value.split(":")
    if len(parts) not in (2, 3) or parts[1] == "*":
        raise SearchError(f"{name}={value} is not supported (use Type:param or Type:param:Target)")
    param = params_of(parts[0]).get(parts[1])
    if param is None or param.kind != "reference":
        raise SearchError(f"{name}={value}: {parts[0]} has no reference parameter {parts[1]!r}")
    return Link(parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def parse_query(resource_type: str, pairs: Iterable[tuple[str, str]], *, allow: Iterable[str] = ()) -> Query:
    """A query for `resource_type` from its parameters; `allow` names extra parameters the caller
    handles itself (ignored here). SearchError for anything unknown or malformed."""
    query = Query(resource_type)
    known = params_of(resource_type)
    allowed = set(allow)
    for raw_name, value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in allowed:
            continue
        if modifier and name not in ("_include", "_revinclude"):
            raise SearchError(f"modifier :{modifier} of {name} is not supported")
        if name == "_count":
            if not value.isdigit():
                raise SearchError(f"_count={value} is not a number")
            query.count = int(value)
        elif name == "_sort":
            for key in value.split(","):
                if key.lstrip("-") not in SORTABLE:
                    raise SearchError(f"_sort={key} is not supported (use {', '.join(SORTABLE)})")
                query.sort.append(key)
        elif name == "_include":
            query.includes.append(_link(value, name))
        elif name == "_revinclude":
            query.revincludes.append(_link(value, name))
        elif name == "_summary":
            query.summary_count = value == "count"
        elif name in CONTROL:
            continue
        elif name in ("_id", "_lastUpdated"):
            if name == "_lastUpdated":
                for item in value.split(","):
                    parse_datetime(item[2:] if item[:2] in PREFIXES else item)
            query.filters.append(Filter(name, None, tuple(value.split(","))))
        elif name in known:
            param = known[name]
            if param.kind == "date":
                for item in value.split(","):
                    parse_datetime(item[2:] if item[:2] in PREFIXES else item)
            query.filters.append(Filter(name, param, tuple(value.split(","))))
        else:
            raise SearchError(f"unknown search parameter {raw_name!r} for {resource_type}")
    return query


def candidates(store: Store, query: Query) -> list[dict[str, Any]]:
    """The resources worth testing: those of one patient when a patient filter names one."""
    for query_filter in query.filters:
        if query_filter.name in _PATIENT_PARAMS and len(query_filter.values) == 1:
            parts = query_filter.values[0].split("/")
            if len(parts) == 1 or parts[-2] == "Patient":
                return [r for r in store.about_patient(parts[-1]) if r["resourceType"] == query.resource_type]
    return store.of_type(query.resource_type)


def run(store: Store, query: Query) -> list[dict[str, Any]]:
    """The matches of a query, sorted as asked (stable: ties keep the store's order)."""
    found = [resource for resource in candidates(store, query) if query.matches(resource)]
    return sort_resources(found, query.sort)


def sort_resources(resources: list[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Sorted by `date`, `_lastUpdated` or `_id` (a `-` prefix descends); missing values sort last."""
    for key in reversed(keys):
        name, descending = key.lstrip("-"), key.startswith("-")

        def value(resource: dict[str, Any], name: str = name) -> Any:
            if name == "_id":
                return str(resource.get("id"))
            if name == "_lastUpdated":
                return _date_value(resource.get("meta", {}).get("lastUpdated"))
            return resource_date(resource)

        present = [r for r in resources if value(r) is not None]
        missing = [r for r in resources if value(r) is None]
        resources = sorted(present, key=value, reverse=descending) + missing
    return resources


def included(store: Store, query: Query, page: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the page's `_include` and `_revinclude` bring in, without repeats or page members."""
    seen = {(r["resourceType"], str(r.get("id"))) for r in page}
    extra: list[dict[str, Any]] = []

    def add(resource: dict[str, Any] | None) -> None:
        if resource is not None and (key := (resource["resourceType"], str(resource.get("id")))) not in seen:
            seen.add(key)
            extra.append(resource)

    for link in query.includes:
        param = params_of(link.source)[link.param]
        for resource in page:
            if resource["resourceType"] != link.source:
                continue
            for path in param.paths:
                for element in values_at(resource, path):
                    reference = reference_of(element)
                    if reference is None or "/" not in reference:
                        continue
                    target_type, target_id = reference.split("/")
                    if link.target is None or link.target == target_type:
                        add(store.get(target_type, target_id))
    for link in query.revincludes:
        param = params_of(link.source)[link.param]
        for resource in page:
            if link.target is not None and resource["resourceType"] != link.target:
                continue
            here = f"{resource['resourceType']}/{resource.get('id')}"
            if resource["resourceType"] == "Patient" and link.param in _PATIENT_PARAMS:
                pool = [
                    r for r in store.about_patient(str(resource["id"])) if r["resourceType"] == link.source
                ]
            else:
                pool = store.of_type(link.source)
            probe = Filter(link.param, param, (here,))
            for candidate in pool:
                if probe.matches(candidate):
                    add(candidate)
    return extra
