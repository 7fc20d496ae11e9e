from tests.api.conftest import api  # noqa: F401 - the served API, with a worker and Temporal
