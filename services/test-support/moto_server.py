"""moto's server as installed, with CodePipeline's and CodeBuild's timestamps
in the wire format AWS uses.

moto 5.2.5 writes those two services' times (a pipeline's created/updated, an
execution's start, a build's phases) as ISO 8601 strings. Their JSON protocols
say epoch seconds, which is what AWS sends and what the Rust SDK reads, strictly:
an ISO string there fails the whole answer.

moto's recorder writes each request as a JSON line from the server's request
threads with no lock, through a buffered file: an entry over 8 KiB is written in
more than one write, and two concurrent ones interleave into lines no one can
read (validate_requests.py failed on one in CI). Here one request is recorded at
a time. Everything else is moto unchanged.

Usage: python3 moto_server.py -H HOST -p PORT (moto_server's own arguments).
"""

import sys
import threading

import moto.codebuild.models as codebuild
import moto.codepipeline.models as codepipeline
from moto.core.utils import unix_time
from moto.moto_api._internal.recorder.models import Recorder
from moto.server import main

codepipeline.iso_8601_datetime_with_milliseconds = unix_time
codebuild.iso_8601_datetime_with_milliseconds = unix_time

_record_request = Recorder._record_request
_one_entry_at_a_time = threading.Lock()


def _record_request_whole(self, request, body=None):
    with _one_entry_at_a_time:
        _record_request(self, request, body)


Recorder._record_request = _record_request_whole

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
