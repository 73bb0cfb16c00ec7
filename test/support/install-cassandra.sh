#!/usr/bin/env bash
# Fetches Apache Cassandra from Maven Central (org.apache.cassandra:cassandra-all with every
# dependency) at the version picloud's image pins (CASSANDRA_VERSION in
# components/tiers/database/cassandra.ts), with Prometheus's JMX exporter agent at the version the
# image adds (JMX_EXPORTER), into a cache outside the clone keyed by both, and cqlsh from PyPI into
# a virtualenv beside it. Links `cassandra-lib` (the jar folder) and `cqlsh` into the validators'
# directory. Runs on the machine's JDK 17. Quick when all is there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin_dir="${PICLOUD_VALIDATORS_DIR:-$repo/.cache/validators/bin}"
source_file="$repo/components/tiers/database/cassandra.ts"

version=$(grep -o 'CASSANDRA_VERSION = "[0-9][0-9.]*"' "$source_file" | cut -d'"' -f2)
jmx=$(grep -o 'version: "[0-9][0-9.]*"' "$source_file" | head -1 | cut -d'"' -f2)
[ -n "$version" ] && [ -n "$jmx" ] || { echo "install-cassandra: no CASSANDRA_VERSION or JMX_EXPORTER version in $source_file" >&2; exit 1; }
cqlsh_version=6.2.1
cache=${PICLOUD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/picloud-tools}
dir="$cache/cassandra-$version-jmx$jmx"
mkdir -p "$bin_dir"

if [ ! -e "$dir/lib/cassandra-all-$version.jar" ] || [ ! -e "$dir/lib/jmx_prometheus_javaagent-$jmx.jar" ]; then
    command -v mvn >/dev/null || { echo "install-cassandra: needs Maven (apt-get install maven) to fetch cassandra-all from Maven Central" >&2; exit 1; }
    echo "install-cassandra: fetching cassandra-all $version and jmx_prometheus_javaagent $jmx with their dependencies from Maven Central" >&2
    rm -rf "$dir" && mkdir -p "$dir"
    cat >"$dir/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>picloud.test</groupId><artifactId>cassandra</artifactId><version>1</version><packaging>pom</packaging>
<dependencies>
<dependency><groupId>org.apache.cassandra</groupId><artifactId>cassandra-all</artifactId><version>$version</version></dependency>
<dependency><groupId>io.prometheus.jmx</groupId><artifactId>jmx_prometheus_javaagent</artifactId><version>$jmx</version></dependency>
</dependencies></project>
POM
    (cd "$dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$dir/lib" >&2)
fi
if ! [ -x "$dir/cqlsh/bin/cqlsh" ]; then
    echo "install-cassandra: installing cqlsh $cqlsh_version from PyPI" >&2
    /usr/bin/python3 -m venv "$dir/cqlsh"
    "$dir/cqlsh/bin/pip" install --quiet --disable-pip-version-check "cqlsh==$cqlsh_version"
fi
ln -sfn "$dir/lib" "$bin_dir/cassandra-lib"
ln -sf "$dir/cqlsh/bin/cqlsh" "$bin_dir/cqlsh"
