"""What a test run must not inherit from the shell or the Jenkins agent that started it."""

# Variables a developer's shell or a Jenkins agent may set that would leak into the tests.
LEAKY = (
    "MLFLOW_TRACKING_URI",
    "MLCI_CONFIG",
    "BUILD_USER_ID",
    "BUILD_URL",
    "BUILD_NUMBER",
    "JOB_NAME",
    "BRANCH_NAME",
    "GIT_BRANCH",
    "CHANGE_ID",
    "CHANGE_BRANCH",
    "JENKINS_URL",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)
