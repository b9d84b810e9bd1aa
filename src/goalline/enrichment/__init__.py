"""Offline enrichment lookups: user agent → browser/os/device, IP → geo, dictionary values."""
