"""moto's server as installed, with CodePipeline's and CodeBuild's timestamps
in the wire format AWS uses.

moto 5.2.5 writes those two services' times (a pipeline's created/updated, an
execution's start, a build's phases) as ISO 8601 strings. Their JSON protocols
say epoch seconds, which is what AWS sends and what the Rust SDK reads, strictly:
an ISO string there fails the whole answer. Everything else is moto unchanged.

Usage: python3 moto_server.py -H HOST -p PORT (moto_server's own arguments).
"""

import sys

import moto.codebuild.models as codebuild
import moto.codepipeline.models as codepipeline
from moto.core.utils import unix_time
from moto.server import main

codepipeline.iso_8601_datetime_with_milliseconds = unix_time
codebuild.iso_8601_datetime_with_milliseconds = unix_time

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
