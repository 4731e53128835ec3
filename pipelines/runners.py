"""An offline local runner: the DirectRunner's engines without the Prism download attempt."""

from __future__ import annotations

from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.runners.runner import PipelineRunner

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
