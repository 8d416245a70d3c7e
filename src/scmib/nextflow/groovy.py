"""Run the workflow's own Groovy with a real Groovy runtime, for tests.

No Nextflow runtime installs here, but the Nextflow language server jar (see
:mod:`scmib.nextflow.language_server`) carries Groovy 4 (``groovy.ui.GroovyMain``).
The Groovy left in the workflow (functions in ``workflows/modules/functions.nf``,
the directive expressions that call them, expressions in ``nextflow.config``)
is taken from the files as written and evaluated there, with small stand-ins
for Nextflow's ``MemoryUnit`` and ``Duration`` that convert from strings as
Nextflow's own ``asType`` extensions do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from scmib.errors import ScmibError
from scmib.nextflow.language_server import default_jar_path

#: Stand-ins for nextflow.util.MemoryUnit and Duration, and the String/GString conversions
#: Nextflow adds (nextflow.extension.Bolts.asType), so `"4 GB" as MemoryUnit` works as there.
PRELUDE = r"""
class MemoryUnit implements Comparable<MemoryUnit> {
    final String text
    MemoryUnit(String text) { this.text = text }
    long toBytes() {
        def m = (text =~ /^\s*([0-9.]+?)\.?\s*([KMGTP]?)B\s*$/)
        assert m.matches() : "not a memory value: " + text
        return ((m.group(1) as BigDecimal) * (1024G ** ('_KMGTP'.indexOf(m.group(2) ?: '_') ?: 0))) as long
    }
    int compareTo(MemoryUnit other) { toBytes() <=> other.toBytes() }
    String toString() { "MemoryUnit(" + text + ")" }
}
Integer.metaClass.getGB = { -> new MemoryUnit(delegate + " GB") }
class Duration {
    final String text
    Duration(String text) { this.text = text }
    long toSeconds() { text.replaceAll(/s$/, '') as long }
    String toString() { "Duration(" + text + ")" }
}
def nextflowAsType = { Object self, Class type ->
    if (type == MemoryUnit) return new MemoryUnit(self.toString())
    if (type == Duration) return new Duration(self.toString())
    return org.codehaus.groovy.runtime.StringGroovyMethods.asType(self.toString(), type)
}
String.metaClass.asType = { Class type -> nextflowAsType(delegate, type) }
GString.metaClass.asType = { Class type -> nextflowAsType(delegate, type) }
"""


def function_source(text: str, name: str) -> str:
    """The source of the top-level ``def name(...) { ... }`` in a ``.nf`` file (it ends at a ``}`` line)."""
    match = re.search(rf"^def {re.escape(name)}\(.*?^\}}", text, re.M | re.S)
    if match is None:
        raise ScmibError(f"no top-level function '{name}'")
    return match.group(0)


def directive_expression(text: str, directive: str) -> str:
    """The expression of a process directive written on one line (``errorStrategy <expression>``)."""
    match = re.search(rf"^\s*{re.escape(directive)}\s+(.+?)\s*$", text, re.M)
    if match is None:
        raise ScmibError(f"no '{directive}' directive")
    return match.group(1)


def config_expression(text: str, option: str) -> str:
    """The right-hand side of ``option = <expression>`` in a config file (one or more lines)."""
    match = re.search(rf"^\s*{re.escape(option)}\s*=\s*(.+?)\s*$", text, re.M)
    if match is None:
        raise ScmibError(f"no '{option} = ...' in the configuration")
    expression = match.group(1)
    if expression.endswith(("[", "(")):  # a bracketed value over several lines
        start, depth = match.start(1), 0
        for end, char in enumerate(text[start:], start):
            depth += (char in "[(") - (char in "])")
            if depth == 0:
                return text[start : end + 1]
    return expression


def run_groovy(script: str, jar: Path | None = None, timeout_s: float = 120) -> str:
    """Run a Groovy script (after :data:`PRELUDE`) and return what it printed."""
    jar = jar or default_jar_path()
    if not jar.is_file():
        raise ScmibError(f"no Nextflow language server at {jar}: run 'scmib nf-check --fetch'")
    if shutil.which("java") is None:
        raise ScmibError(
            "java (17 or newer) is needed to run Groovy: apt-get install openjdk-17-jre-headless"
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "check.groovy"
        path.write_text(PRELUDE + "\n" + script)
        done = subprocess.run(
            ["java", "-cp", str(jar), "groovy.ui.GroovyMain", str(path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    if done.returncode != 0:
        raise ScmibError(f"Groovy failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.stdout
