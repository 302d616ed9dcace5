"""Issue 14's config keys: the registry (host[:port], insecure only when said), the address an
environment publishes on (one IP, never every interface), ports shared across hosts."""

import pytest

from ml import config as config_module
from ml.errors import ConfigError


def test_an_environment_never_publishes_on_every_interface(project):
    for address in ("0.0.0.0", "::"):
        project.edit(**{"environments.production.address": address})
        with pytest.raises(ConfigError) as caught:
            config_module.load(project.config_file)
        assert any("environments.production.address" in d and "every interface" in d for d in caught.value.details)
    project.edit(**{"environments.production.address": "prod-1.example.com"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any("must be an IP address" in d for d in caught.value.details)


def test_environments_on_other_hosts_may_share_ports_one_host_may_not(project):
    port = project.config["environments"]["production"]["port"]
    project.edit(**{"environments.staging.port": port})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any("already used" in d for d in caught.value.details)
    project.edit(
        **{"environments.staging.docker_host": "ssh://deploy@10.0.2.11", "environments.staging.address": "10.0.2.11"}
    )
    assert config_module.load(project.config_file).environments["staging"].port == port


def test_the_registry_is_host_and_port_and_plain_http_only_when_said(project):
    config = config_module.load(project.config_file)
    assert config.images.registry is None and config.images.insecure is False
    project.edit(**{"images.registry": "registry.example.com:5000/team"})
    assert config_module.load(project.config_file).images.registry == "registry.example.com:5000/team"
    project.edit(**{"images.registry": "https://registry.example.com"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any(d.startswith("images.registry") for d in caught.value.details)
    project.edit(**{"images.registry": "registry.example.com", "images.insecure": "yes please"})
    with pytest.raises(ConfigError) as caught:
        config_module.load(project.config_file)
    assert any(d.startswith("images.insecure") for d in caught.value.details)
