"""An offline local runner: the DirectRunner's engines without the Prism download attempt."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile

from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.runners.runner import PipelineRunner

from pipelines.lock import pid_alive

# Names users type for "run it here". Beam's own DirectRunner first tries to download Prism,
# which hangs or fails behind a firewall; these are routed to OfflineDirectRunner instead.
LOCAL_RUNNER_NAMES = {None, "", "direct", "directrunner", "switchingdirectrunner"}
OFFLINE_RUNNER = "pipelines.runners.OfflineDirectRunner"


class OfflineDirectRunner(PipelineRunner):
    """FnApiRunner for batch (honours --direct_num_workers/--direct_running_mode), the bundle-based
    DirectRunner for streaming. Never downloads anything."""

    def run_pipeline(self, pipeline, options):
        if options.view_as(StandardOptions).streaming:
            from apache_beam.runners.direct.direct_runner import BundleBasedDirectRunner

            return BundleBasedDirectRunner().run_pipeline(pipeline, options)
        from apache_beam.portability.api import beam_provision_api_pb2
        from apache_beam.runners.portability.fn_api_runner import fn_runner
        from apache_beam.runners.portability.portable_runner import JobServiceHandle

        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
        return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)


def pin_offline_runner(options) -> str:
    """Route local runner names to OfflineDirectRunner; return the runner name in effect."""
    std = options.view_as(StandardOptions)
    if (std.runner or "").lower() in LOCAL_RUNNER_NAMES:
        std.runner = OFFLINE_RUNNER
    return std.runner


_TEMP_PREFIX = "news-ingest-"
_TEMP_NAME = re.compile(r"^news-ingest-(\d+)-")


def remove_stale_tempdirs(root: str | None = None) -> int:
    """Delete the private temp folders of runs whose process is gone (killed with SIGKILL, or a crashed host
    process); returns how many went."""
    root = root or tempfile.gettempdir()
    removed = 0
    try:
        names = os.listdir(root)
    except OSError:
        return 0
    for name in names:
        m = _TEMP_NAME.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
            removed += 1
    return removed


@contextlib.contextmanager
def private_tempdir():
    """Run with every temporary file, Beam's `beam-pipeline-temp*` folders and its workers' included, in one
    folder of our own that is removed at the end, however the run ends (a failed or interrupted run too)."""
    remove_stale_tempdirs()
    path = tempfile.mkdtemp(prefix=f"{_TEMP_PREFIX}{os.getpid()}-")
    saved_module, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir = path
    os.environ["TMPDIR"] = path  # worker processes the runner starts
    try:
        yield path
    finally:
        tempfile.tempdir = saved_module
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(path, ignore_errors=True)
