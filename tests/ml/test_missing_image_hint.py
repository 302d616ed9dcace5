"""An image missing on the deploying engine: under Jenkins, say that another agent is the likely cause."""

from ml.deploy.slots import missing_image_hint


def test_outside_jenkins_the_hint_is_unchanged(monkeypatch):
    monkeypatch.delenv("JENKINS_URL", raising=False)
    assert missing_image_hint("run mlci build first") == "run mlci build first"


def test_under_jenkins_the_hint_names_the_agent_and_the_fix(monkeypatch):
    monkeypatch.setenv("JENKINS_URL", "https://jenkins.example.com/")
    monkeypatch.setenv("NODE_NAME", "agent-7")
    hint = missing_image_hint("run mlci build first")
    assert hint.startswith("run mlci build first. Under Jenkins")
    assert "(agent-7 now)" in hint and "docker_host" in hint and "images.registry" in hint
