"""In-memory configuration of a simulated station.

* :class:`ConfigStore16`: OCPP 1.6 configuration keys (1.6 §9 "Standard Configuration Keys",
  GetConfiguration §5.8, ChangeConfiguration §5.3) plus the security extension's
  ``AuthorizationKey`` / ``SecurityProfile``.
* :class:`VariableStore201`: OCPP 2.0.1 device model variables (Part 2 Appendix, B06/B07/B05)
  keyed by (component, evse, variable, variable instance), ``Actual`` attribute only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

Kind = Literal["integer", "decimal", "boolean", "string", "dateTime", "MemberList", "OptionList"]


def _valid(kind: Kind, value: str, options: tuple[str, ...] = ()) -> bool:
    """True when ``value`` is acceptable for a key of type ``kind``."""
    if kind == "integer":
        try:
            return int(value) >= 0
        except ValueError:
            return False
    if kind == "decimal":
        try:
            float(value)
        except ValueError:
            return False
        return True
    if kind == "boolean":
        return value.lower() in ("true", "false")
    if kind == "OptionList" and options:
        return value in options
    return True


def utc_now_iso() -> str:
    """Current UTC time as an OCPP ``dateTime`` (RFC 3339 with ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------------------------
# OCPP 1.6
# --------------------------------------------------------------------------------------------


@dataclass
class ConfigKey:
    """One 1.6 configuration key (1.6 §9)."""

    value: str
    readonly: bool = False
    kind: Kind = "string"
    write_only: bool = False
    reboot_required: bool = False


ChangeStatus16 = Literal["Accepted", "Rejected", "RebootRequired", "NotSupported"]


class ConfigStore16:
    """1.6 configuration keys with realistic defaults (1.6 §9.1 Core profile and friends)."""

    def __init__(self, connectors: int, password: str | None = None,
                 security_profile: int | None = None) -> None:
        phases = ",".join(f"{i}.RST" for i in range(connectors + 1))
        csl: Kind = "MemberList"
        self.keys: dict[str, ConfigKey] = {
            "AllowOfflineTxForUnknownId": ConfigKey("false", kind="boolean"),
            "AuthorizationCacheEnabled": ConfigKey("true", kind="boolean"),
            "AuthorizeRemoteTxRequests": ConfigKey("false", kind="boolean"),
            "ClockAlignedDataInterval": ConfigKey("0", kind="integer"),
            "ConnectionTimeOut": ConfigKey("60", kind="integer"),
            "ConnectorPhaseRotation": ConfigKey(phases, kind=csl),
            "GetConfigurationMaxKeys": ConfigKey("50", readonly=True, kind="integer"),
            "HeartbeatInterval": ConfigKey("300", kind="integer"),
            "LightIntensity": ConfigKey("80", kind="integer"),
            "LocalAuthorizeOffline": ConfigKey("true", kind="boolean"),
            "LocalPreAuthorize": ConfigKey("false", kind="boolean"),
            "MeterValuesAlignedData": ConfigKey("Energy.Active.Import.Register", kind=csl),
            "MeterValuesSampledData": ConfigKey(
                "Energy.Active.Import.Register,Power.Active.Import", kind=csl
            ),
            "MeterValueSampleInterval": ConfigKey("60", kind="integer"),
            "NumberOfConnectors": ConfigKey(str(connectors), readonly=True, kind="integer"),
            "ResetRetries": ConfigKey("1", kind="integer"),
            "StopTransactionOnEVSideDisconnect": ConfigKey("true", kind="boolean"),
            "StopTransactionOnInvalidId": ConfigKey("true", kind="boolean"),
            "StopTxnAlignedData": ConfigKey("", kind=csl),
            "StopTxnSampledData": ConfigKey("Energy.Active.Import.Register", kind=csl),
            "SupportedFeatureProfiles": ConfigKey(
                "Core,FirmwareManagement,LocalAuthListManagement,RemoteTrigger", readonly=True
            ),
            "TransactionMessageAttempts": ConfigKey("3", kind="integer"),
            "TransactionMessageRetryInterval": ConfigKey("60", kind="integer"),
            "UnlockConnectorOnEVSideDisconnect": ConfigKey("true", kind="boolean"),
            "WebSocketPingInterval": ConfigKey("0", kind="integer"),
            "LocalAuthListEnabled": ConfigKey("true", kind="boolean"),
            "LocalAuthListMaxLength": ConfigKey("1000", readonly=True, kind="integer"),
            "SendLocalListMaxLength": ConfigKey("100", readonly=True, kind="integer"),
            # Security whitepaper (1.6 security extension) keys.
            "AuthorizationKey": ConfigKey(password or "", write_only=True),
            "SecurityProfile": ConfigKey(
                str(security_profile if security_profile is not None else 1 if password else 0),
                kind="integer",
            ),
            "CpoName": ConfigKey(""),
        }

    def get(self, key: str) -> str | None:
        """Value of ``key`` or None when unknown."""
        entry = self.keys.get(key)
        return None if entry is None else entry.value

    def set_internal(self, key: str, value: str) -> None:
        """Set a value from inside the station (no access checks)."""
        self.keys[key].value = value

    def get_configuration(self, keys: list[str] | None) -> dict[str, Any]:
        """GetConfiguration.conf payload (1.6 §6.23): known keys and unknownKey list."""
        names = keys if keys else list(self.keys)
        found: list[dict[str, Any]] = []
        unknown: list[str] = []
        for name in names:
            entry = self.keys.get(name)
            if entry is None or (entry.write_only and not keys):
                if keys:
                    unknown.append(name)
                continue
            item: dict[str, Any] = {"key": name, "readonly": entry.readonly}
            if not entry.write_only:
                item["value"] = entry.value
            found.append(item)
        payload: dict[str, Any] = {}
        if found:
            payload["configurationKey"] = found
        if unknown:
            payload["unknownKey"] = unknown
        return payload

    def change(self, key: str, value: str) -> ChangeStatus16:
        """ChangeConfiguration (1.6 §5.3): NotSupported for unknown, Rejected for read-only or
        invalid values, RebootRequired for keys applied at the next boot."""
        entry = self.keys.get(key)
        if entry is None:
            return "NotSupported"
        if entry.readonly or not _valid(entry.kind, value):
            return "Rejected"
        entry.value = value.lower() if entry.kind == "boolean" else value
        return "RebootRequired" if entry.reboot_required else "Accepted"


# --------------------------------------------------------------------------------------------
# OCPP 2.0.1
# --------------------------------------------------------------------------------------------


class VarKey(NamedTuple):
    """Address of a 2.0.1 variable: component name, EVSE id (None = station), variable name,
    variable instance."""

    component: str
    evse: int | None
    variable: str
    instance: str | None = None


Mutability = Literal["ReadOnly", "ReadWrite", "WriteOnly"]


@dataclass
class Variable:
    """One 2.0.1 variable (``Actual`` attribute) with its characteristics."""

    value: str
    mutability: Mutability = "ReadWrite"
    data_type: Kind = "string"
    reboot_required: bool = False
    getter: Callable[[], str] | None = None
    options: tuple[str, ...] = ()

    def current(self) -> str:
        """Current value (dynamic variables use ``getter``)."""
        return self.getter() if self.getter is not None else self.value


class VariableStore201:
    """2.0.1 device model with realistic defaults (B05 SetVariables, B06 GetVariables)."""

    def __init__(
        self,
        *,
        station_id: str,
        evses: int,
        vendor: str,
        model: str,
        serial: str,
        firmware: str,
        password: str | None,
        security_profile: int = 1,
    ) -> None:
        ro: Mutability = "ReadOnly"
        v: dict[VarKey, Variable] = {
            VarKey("OCPPCommCtrlr", None, "HeartbeatInterval"): Variable(
                "300", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "NetworkConfigurationPriority"): Variable("0"),
            VarKey("OCPPCommCtrlr", None, "NetworkProfileConnectionAttempts"): Variable(
                "3", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "OfflineThreshold"): Variable("60", data_type="integer"),
            VarKey("OCPPCommCtrlr", None, "MessageTimeout", "Default"): Variable(
                "30", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "MessageAttempts", "TransactionEvent"): Variable(
                "3", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "MessageAttemptInterval", "TransactionEvent"): Variable(
                "60", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "ResetRetries"): Variable("2", data_type="integer"),
            VarKey("OCPPCommCtrlr", None, "RetryBackOffRepeatTimes"): Variable(
                "3", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "RetryBackOffRandomRange"): Variable(
                "10", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "RetryBackOffWaitMinimum"): Variable(
                "5", data_type="integer"
            ),
            VarKey("OCPPCommCtrlr", None, "WebSocketPingInterval"): Variable(
                "30", data_type="integer"
            ),
            VarKey("SecurityCtrlr", None, "BasicAuthPassword"): Variable(
                password or "", mutability="WriteOnly"
            ),
            VarKey("SecurityCtrlr", None, "Identity"): Variable(station_id, mutability=ro),
            VarKey("SecurityCtrlr", None, "OrganizationName"): Variable("SimOrg"),
            VarKey("SecurityCtrlr", None, "SecurityProfile"): Variable(
                str(security_profile), mutability=ro, data_type="integer"
            ),
            VarKey("ChargingStation", None, "Model"): Variable(model, mutability=ro),
            VarKey("ChargingStation", None, "VendorName"): Variable(vendor, mutability=ro),
            VarKey("ChargingStation", None, "SupplyPhases"): Variable(
                "3", mutability=ro, data_type="integer"
            ),
            VarKey("ChargingStation", None, "Available"): Variable(
                "true", mutability=ro, data_type="boolean"
            ),
            VarKey("Controller", None, "SerialNumber"): Variable(serial, mutability=ro),
            VarKey("Controller", None, "FirmwareVersion"): Variable(firmware, mutability=ro),
            VarKey("AuthCtrlr", None, "Enabled"): Variable("true", data_type="boolean"),
            VarKey("AuthCtrlr", None, "AuthorizeRemoteStart"): Variable(
                "false", data_type="boolean"
            ),
            VarKey("AuthCtrlr", None, "LocalAuthorizeOffline"): Variable(
                "true", data_type="boolean"
            ),
            VarKey("AuthCtrlr", None, "LocalPreAuthorize"): Variable("false", data_type="boolean"),
            VarKey("TxCtrlr", None, "EVConnectionTimeOut"): Variable("60", data_type="integer"),
            VarKey("TxCtrlr", None, "StopTxOnEVSideDisconnect"): Variable(
                "true", data_type="boolean"
            ),
            VarKey("TxCtrlr", None, "StopTxOnInvalidId"): Variable("true", data_type="boolean"),
            VarKey("TxCtrlr", None, "TxStartPoint"): Variable("PowerPathClosed"),
            VarKey("TxCtrlr", None, "TxStopPoint"): Variable("EVConnected"),
            VarKey("SampledDataCtrlr", None, "Enabled"): Variable("true", data_type="boolean"),
            VarKey("SampledDataCtrlr", None, "TxUpdatedInterval"): Variable(
                "60", data_type="integer"
            ),
            VarKey("SampledDataCtrlr", None, "TxUpdatedMeasurands"): Variable(
                "Energy.Active.Import.Register,Power.Active.Import", data_type="MemberList"
            ),
            VarKey("SampledDataCtrlr", None, "TxStartedMeasurands"): Variable(
                "Energy.Active.Import.Register", data_type="MemberList"
            ),
            VarKey("SampledDataCtrlr", None, "TxEndedMeasurands"): Variable(
                "Energy.Active.Import.Register", data_type="MemberList"
            ),
            VarKey("AlignedDataCtrlr", None, "Interval"): Variable("0", data_type="integer"),
            VarKey("AlignedDataCtrlr", None, "Measurands"): Variable(
                "Energy.Active.Import.Register", data_type="MemberList"
            ),
            VarKey("DeviceDataCtrlr", None, "ItemsPerMessage", "GetVariables"): Variable(
                "50", mutability=ro, data_type="integer"
            ),
            VarKey("DeviceDataCtrlr", None, "ItemsPerMessage", "SetVariables"): Variable(
                "50", mutability=ro, data_type="integer"
            ),
            VarKey("DeviceDataCtrlr", None, "BytesPerMessage", "GetVariables"): Variable(
                "65000", mutability=ro, data_type="integer"
            ),
            VarKey("DeviceDataCtrlr", None, "BytesPerMessage", "SetVariables"): Variable(
                "65000", mutability=ro, data_type="integer"
            ),
            VarKey("ClockCtrlr", None, "DateTime"): Variable(
                "", mutability=ro, data_type="dateTime", getter=utc_now_iso
            ),
            VarKey("ClockCtrlr", None, "TimeSource"): Variable("Heartbeat", data_type="MemberList"),
        }
        for evse in range(1, evses + 1):
            v[VarKey("EVSE", evse, "Available")] = Variable(
                "true", mutability=ro, data_type="boolean"
            )
            v[VarKey("EVSE", evse, "Power")] = Variable(
                "22000", mutability=ro, data_type="decimal"
            )
            v[VarKey("EVSE", evse, "SupplyPhases")] = Variable(
                "3", mutability=ro, data_type="integer"
            )
            v[VarKey("Connector", evse, "ConnectorType")] = Variable("cType2", mutability=ro)
            v[VarKey("Connector", evse, "SupplyPhases")] = Variable(
                "3", mutability=ro, data_type="integer"
            )
        self.vars = v

    def __iter__(self) -> Iterator[tuple[VarKey, Variable]]:
        return iter(self.vars.items())

    def add(self, key: VarKey, var: Variable) -> None:
        """Add or replace a variable (used for dynamic values such as AvailabilityState)."""
        self.vars[key] = var

    def get(self, component: str, variable: str, evse: int | None = None) -> str | None:
        """Current value or None when unknown."""
        var = self.vars.get(VarKey(component, evse, variable))
        return None if var is None else var.current()

    def set_internal(self, component: str, variable: str, value: str) -> None:
        """Set a station-level value from inside the station (no access checks)."""
        self.vars[VarKey(component, None, variable)].value = value

    def _lookup(self, component: dict[str, Any], variable: dict[str, Any]) -> Variable | str:
        evse = component.get("evse", {}).get("id")
        key = VarKey(component["name"], evse, variable["name"], variable.get("instance"))
        var = self.vars.get(key)
        if var is not None:
            return var
        if not any(k.component == key.component and k.evse == evse for k in self.vars):
            return "UnknownComponent"
        return "UnknownVariable"

    def get_variable(self, item: dict[str, Any]) -> dict[str, Any]:
        """One GetVariableResultType (2.0.1 B06): unknown component/variable, write-only values
        Rejected, non-Actual attributes NotSupportedAttributeType."""
        result: dict[str, Any] = {
            "component": item["component"],
            "variable": item["variable"],
        }
        attr = item.get("attributeType", "Actual")
        if "attributeType" in item:
            result["attributeType"] = attr
        found = self._lookup(item["component"], item["variable"])
        if isinstance(found, str):
            result["attributeStatus"] = found
        elif attr != "Actual":
            result["attributeStatus"] = "NotSupportedAttributeType"
        elif found.mutability == "WriteOnly":
            result["attributeStatus"] = "Rejected"
        else:
            result["attributeStatus"] = "Accepted"
            result["attributeValue"] = found.current()
        return result

    def set_variable(self, item: dict[str, Any]) -> tuple[dict[str, Any], Variable | None]:
        """One SetVariableResultType (2.0.1 B05) and the variable that changed (or None)."""
        result: dict[str, Any] = {
            "component": item["component"],
            "variable": item["variable"],
        }
        attr = item.get("attributeType", "Actual")
        if "attributeType" in item:
            result["attributeType"] = attr
        found = self._lookup(item["component"], item["variable"])
        value = str(item["attributeValue"])
        if isinstance(found, str):
            result["attributeStatus"] = found
            return result, None
        if attr != "Actual":
            result["attributeStatus"] = "NotSupportedAttributeType"
            return result, None
        if found.mutability == "ReadOnly" or not _valid(found.data_type, value, found.options):
            result["attributeStatus"] = "Rejected"
            return result, None
        found.value = value.lower() if found.data_type == "boolean" else value
        result["attributeStatus"] = "RebootRequired" if found.reboot_required else "Accepted"
        return result, found

    def report_data(self) -> list[dict[str, Any]]:
        """ReportDataType list for NotifyReport (2.0.1 B07 GetBaseReport FullInventory)."""
        data: list[dict[str, Any]] = []
        for key, var in self.vars.items():
            component: dict[str, Any] = {"name": key.component}
            if key.evse is not None:
                component["evse"] = {"id": key.evse}
            variable: dict[str, Any] = {"name": key.variable}
            if key.instance is not None:
                variable["instance"] = key.instance
            attribute: dict[str, Any] = {"type": "Actual", "mutability": var.mutability}
            if var.mutability != "WriteOnly":
                attribute["value"] = var.current()
            data.append(
                {
                    "component": component,
                    "variable": variable,
                    "variableAttribute": [attribute],
                    "variableCharacteristics": {
                        "dataType": var.data_type,
                        "supportsMonitoring": False,
                    },
                }
            )
        return data
