"""Reports: the figures an owner and a marketer read every morning (calls, missed-call
recovery, manager response time, leads, call-tracking pools). No web framework here."""

from telephony.reports.periods import BadPeriod, local_period
from telephony.reports.service import ReportService

__all__ = ["BadPeriod", "ReportService", "local_period"]
