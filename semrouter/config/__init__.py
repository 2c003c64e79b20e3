"""Typed configuration: the YAML schema and its loader."""

from semrouter.config.load import ConfigError, load_config, parse_config
from semrouter.config.schema import Config

__all__ = ["Config", "ConfigError", "load_config", "parse_config"]
