"""Load test of the running app: a class of students moving the same slider at once.

`python -m tefviz bench serve` starts the app (or targets a local one with --url), opens N browser
sessions over Streamlit's own websocket protocol and, round after round, has every session move its
page's threshold slider to the value the teacher calls out, timing each rerun from the moment the
move is sent to the end of the script run (and to the run's first metric: when the new numbers are
on screen while, on Images, the 2,000-image measurement may still run). The numbers answer "how long
does a class wait after each move on this machine", which no single-session benchmark shows (the runs
share the CPU or GPU, the model caches and the server's event loop).

The client speaks the protocol the frontend speaks (learnt from the pinned Streamlit):
- websocket at /_stcore/stream, subprotocol "streamlit", binary protobuf frames; a Host header
  the server's allowedHosts accepts and no Origin header (so no XSRF cookie is needed);
- the client sends BackMsg.rerun_script with a ClientState: the query string, the page (page_name
  = the url path; after the first run also the page_script_hash that the server's navigation
  message named: new_session only repeats the hash asked for, app.py's when none was), and the
  state of every widget on the page, as the frontend would hold it;
- the server answers with ForwardMsgs (new_session, navigation, deltas, page_info_changed carrying
  the query string the page published, ...) and ends each run with script_finished; a run stopped
  early for a rerun (st.rerun, as on a session's first run through ui/routing) ends with
  FINISHED_EARLY_FOR_RERUN and is followed by the real one.
No message-cache hashes are sent, so the server sends every element in full (a browser that has
seen an element before gets a short reference instead): the test errs on the heavy side.

Only loopback addresses are ever contacted, and proxies from the environment are not used.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

from tefviz.errors import InputError, TefvizError

REPO = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
HEALTH_TIMEOUT_S = 60.0
RSS_EVERY_S = 0.5
_FINISHED_EARLY = ForwardMsg.FINISHED_EARLY_FOR_RERUN
_COMPILE_ERROR = ForwardMsg.FINISHED_WITH_COMPILE_ERROR


@dataclass(frozen=True)
class PageScenario:
    """One page of the lesson: how a student opens it and which slider the class moves."""

    page: str  # the url path registered in ui/registry.py
    query: dict[str, str]  # the shared link the class opens
    slider_key: str  # the widget's user key in pages/<page>.py (its session key, "<page>.<name>")
    url_name: str  # the slider's query parameter in the page's link (the bare name)
    values: tuple[float, ...]  # the teacher's sequence; --moves beyond it starts it again


SCENARIOS: dict[str, PageScenario] = {
    "text": PageScenario("text", {"t": "0.9"}, "text.t", "t", (0.8, 0.7, 0.6, 0.5, 0.4)),
    # only the SVD tokenizers have the threshold slider: the link names the SVD-TEF checkpoint
    "images": PageScenario(
        "images", {"model": "tefviz-image-svd-tef", "t": "0.8"}, "images.t", "t", (0.7, 0.6, 0.5, 0.4, 0.3)
    ),
}


@dataclass
class ServeBenchOptions:
    """The class and its limits; the defaults are a class of 30 on the two pages with a threshold."""

    text_sessions: int = 24
    images_sessions: int = 6
    moves: int = 5
    move_timeout_s: float = 120.0
    max_seconds: float = 600.0
    checkpoints: Path | None = None  # default: the repository's checkpoints/
    url: str | None = None  # an already running local server instead of starting one
    out: Path | None = Path("artifacts/bench_serve.json")


# --- where to connect ---------------------------------------------------------------------------


def check_local_url(url: str) -> str:
    """The server's base http URL (no trailing slash), or InputError for anything but loopback:
    a load test pointed at someone else's server is a denial-of-service attack."""
    parts = urlsplit(url if "//" in url else f"//{url}", scheme="http")
    try:
        host, port = parts.hostname, parts.port
    except ValueError as e:
        raise InputError(f"--url {url!r} is not a valid URL") from e
    if (host or "").lower() not in LOCAL_HOSTS:
        raise InputError(
            f"--url {url!r}: the load test only targets a server on this machine "
            f"({', '.join(LOCAL_HOSTS)}), never {host!r}"
        )
    if parts.scheme not in ("http", "https"):
        raise InputError(f"--url {url!r}: give the app's http address, e.g. http://127.0.0.1:8501")
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{netloc}{f':{port}' if port else ''}{parts.path.rstrip('/')}"


def _ws_target(base_url: str) -> tuple[str, dict]:
    """(websocket URI, extra connect kwargs). For ::1 the socket goes to ::1 but the Host header
    says 127.0.0.1, one of the names .streamlit/config.toml's server.allowedHosts accepts."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    port = parts.port or (443 if scheme == "wss" else 80)
    host, extra = parts.hostname or "127.0.0.1", {}
    if host == "::1":
        host, extra = "127.0.0.1", {"host": "::1", "port": port}
    return f"{scheme}://{host}:{port}{parts.path}/_stcore/stream", extra


def _http_get_status(url: str, timeout: float = 2.0) -> int | None:
    """Status of a GET, or None when nothing answers; never through an environment proxy."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status
    except OSError:
        return None


# --- the server -----------------------------------------------------------------------------------


@dataclass
class ServerHandle:
    url: str
    pid: int | None  # None for a server started elsewhere (no RSS then)
    started_here: bool
    log: Path | None = None  # its output, while it runs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_env(checkpoints: Path) -> dict[str, str]:
    env = dict(os.environ, TEFVIZ_CHECKPOINTS=str(checkpoints), HF_HUB_OFFLINE="1")
    env.pop("STREAMLIT_SERVER_PORT", None)
    return env


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = HEALTH_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise TefvizError(
                f"the app server exited with code {proc.returncode} before it was ready", detail=_tail(log)
            )
        if _http_get_status(f"{url}/_stcore/health") == 200:
            return
        time.sleep(0.25)
    raise TefvizError(
        f"the app server did not answer /_stcore/health within {timeout:.0f} s", detail=_tail(log)
    )


def _tail(path: Path, chars: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-chars:]
    return ""


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@contextlib.contextmanager
def app_server(checkpoints: Path | None = None, url: str | None = None) -> Iterator[ServerHandle]:
    """The app on a free loopback port for the duration of the block (stopped on any exit,
    KeyboardInterrupt included), or the local server at `url` when given."""
    if url is not None:
        base = check_local_url(url)
        if _http_get_status(f"{base}/_stcore/health") != 200:
            raise InputError(f"no Streamlit server answers at {base} (GET /_stcore/health)")
        yield ServerHandle(base, None, False)
        return
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
    ]
    with tempfile.TemporaryDirectory(prefix="tefviz-serve-") as tmp:
        log = Path(tmp) / "server.log"
        with open(log, "wb") as out:
            # its own session: a Ctrl-C meant for the benchmark reaches the server through _stop only
            proc = subprocess.Popen(
                cmd,
                cwd=REPO,
                env=_server_env(checkpoints or REPO / "checkpoints"),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_healthy(base, proc, log)
            yield ServerHandle(base, proc.pid, True, log)
        finally:
            _stop(proc)


# --- memory -----------------------------------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """Resident set size of a process in MB (psutil when installed, else /proc), None if gone."""
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return psutil.Process(pid).memory_info().rss / 2**20
        except psutil.Error:
            return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    """The process's children, then theirs (the background worker: tefviz/workers.py), from /proc."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = list(Path(f"/proc/{parent}/task").iterdir())
        except OSError:
            continue
        for task in tasks:
            with contextlib.suppress(OSError, ValueError):
                kids = [int(k) for k in (task / "children").read_text().split()]
                found += kids
                todo += kids
    return found


def tree_rss_mb(pid: int) -> float | None:
    """RSS of the process and every process under it: what the app costs the machine."""
    own = rss_mb(pid)
    if own is None:
        return None
    return own + sum(mb for kid in _children(pid) if (mb := rss_mb(kid)) is not None)


async def _sample_rss(pid: int, samples: list[float]) -> None:
    while True:
        mb = tree_rss_mb(pid)
        if mb is not None:
            samples.append(mb)
        await asyncio.sleep(RSS_EVERY_S)


# --- the protocol -----------------------------------------------------------------------------------


def _options_value(options, index: int) -> str | None:
    return options[index] if 0 <= index < len(options) else None


def _slider(el, ws: WidgetState) -> bool:
    if el.options:  # a select_slider: the formatted options, as strings
        ws.string_array_value.data[:] = (
            list(el.raw_value) if el.set_value else [el.options[int(i)] for i in el.default]
        )
    else:  # every numeric, date and time slider travels as doubles
        ws.double_array_value.data[:] = list(el.value) if el.set_value else list(el.default)
    return True


def _choice(el, ws: WidgetState) -> bool:  # selectbox, radio: the formatted option
    value = el.raw_value if el.set_value else _options_value(el.options, el.default)
    if value is None:
        return False
    ws.string_value = value
    return True


def _multiselect(el, ws: WidgetState) -> bool:
    ws.string_array_value.data[:] = (
        list(el.raw_values) if el.set_value else [el.options[i] for i in el.default]
    )
    return True


def _checkbox(el, ws: WidgetState) -> bool:
    ws.bool_value = el.value if el.set_value else el.default
    return True


def _number(el, ws: WidgetState) -> bool:
    value = el.value if el.set_value else el.default
    if el.data_type == el.INT:
        ws.int_value = int(value)
    else:
        ws.double_value = value
    return True


def _text(el, ws: WidgetState) -> bool:
    ws.string_value = el.value if el.set_value else el.default
    return True


# Widgets whose value the frontend reports on every rerun. Buttons (triggers, only when clicked),
# charts without selections, and uploaders holding no file send nothing.
_WIDGET_VALUES = {
    "slider": _slider,
    "selectbox": _choice,
    "radio": _choice,
    "multiselect": _multiselect,
    "checkbox": _checkbox,
    "number_input": _number,
    "text_input": _text,
    "text_area": _text,
}


def widget_state(kind: str, el) -> WidgetState | None:
    """The state the frontend sends for a widget element as the server drew it: the server's
    value when it set one (set_value), else the widget's default."""
    to_state = _WIDGET_VALUES.get(kind)
    ws = WidgetState(id=el.id)
    return ws if to_state is not None and to_state(el, ws) else None


def user_key(widget_id: str) -> str | None:
    """'$$ID-<hash>-t' -> 't' (keys may hold dashes themselves)."""
    parts = widget_id.split("-", 2)
    return parts[2] if len(parts) == 3 and parts[0] == "$$ID" else None


def rerun_request(
    query_string: str, page_name: str, page_hash: str, widgets: list[WidgetState] | None = None
) -> bytes:
    msg = BackMsg()
    state = msg.rerun_script
    state.query_string = query_string
    state.page_name = page_name
    state.page_script_hash = page_hash
    if widgets:
        state.widget_states.widgets.extend(widgets)
    return msg.SerializeToString()


@dataclass
class RunResult:
    """What one script run drew: its widgets, metric values, and anything that went wrong."""

    seconds: float = 0.0
    shown_s: float | None = None  # when the run's first metric arrived: the new numbers on screen
    widgets: dict[str, WidgetState] = field(default_factory=dict)
    server_set: set[str] = field(default_factory=set)  # widgets whose value the script set
    metrics: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add_element(self, element) -> None:
        kind = element.WhichOneof("type")
        el = getattr(element, kind) if kind else None
        if kind == "metric":
            self.metrics[el.label] = el.body
        elif kind == "exception":
            # client.showErrorDetails = "none" redacts the message; the server log has the traceback
            text = f"{el.type or 'exception'}: {el.message}"[:300]
            (self.warnings if el.is_warning else self.errors).append(text)
        elif kind == "alert" and el.format == el.ERROR:
            self.errors.append(f"error alert: {el.body}"[:300])
        elif kind == "alert" and el.format == el.WARNING:
            self.warnings.append(el.body[:300])
        elif el is not None and getattr(el, "id", ""):
            ws = widget_state(kind, el)
            if ws is not None:
                self.widgets[el.id] = ws
                if getattr(el, "set_value", False):
                    self.server_set.add(el.id)


# --- one student ------------------------------------------------------------------------------------


class StudentSession:
    """One browser tab on one page: its websocket and what the frontend would remember between
    runs (the query string the page published, the page's script hash, every widget's value)."""

    def __init__(self, scenario: PageScenario, index: int, base_url: str, move_timeout_s: float) -> None:
        self.scenario, self.index, self.move_timeout_s = scenario, index, move_timeout_s
        self.ws_uri, self.connect_kwargs = _ws_target(base_url)
        self.query_string = urlencode(scenario.query)
        self.page_hash = ""
        self.widgets: dict[str, WidgetState] = {}
        self.first: RunResult | None = None
        self.moves: list[dict] = []
        self.errors: list[str] = []  # one line per run that went wrong
        self.warnings: list[str] = []  # warnings the page showed (not errors: e.g. a text cut to fit)
        self.alive = True
        self._ws = None

    async def open(self) -> None:
        """Connect and do the first run: the page opened from the shared link."""
        import websockets

        try:
            self._ws = await websockets.connect(
                self.ws_uri,
                subprotocols=["streamlit"],
                max_size=None,
                proxy=None,
                ping_interval=None,
                open_timeout=self.move_timeout_s,
                **self.connect_kwargs,
            )
        except (OSError, TimeoutError, websockets.InvalidHandshake) as e:
            self._fail(f"connect failed: {e}")
            return
        self.first = await self._run(None)
        self._note(self.first)

    async def move(self, value: float) -> None:
        """Drag the page's slider to `value` and wait for the page to catch up."""
        slider = next((wid for wid in self.widgets if user_key(wid) == self.scenario.slider_key), None)
        if slider is None:
            self._fail(f"no slider with key {self.scenario.slider_key!r} on the page")
            return
        ws = WidgetState(id=slider)
        ws.double_array_value.data[:] = [value]
        self.widgets[slider] = ws
        result = await self._run(list(self.widgets.values()))
        if result is None:
            return
        shown = parse_qs(self.query_string).get(self.scenario.url_name, [None])[0]
        if shown is not None and abs(float(shown) - value) > 1e-9:
            result.errors.append(f"the page kept {self.scenario.url_name}={shown} after a move to {value}")
        self._note(result)
        self.moves.append(
            {
                "value": value,
                "seconds": result.seconds,
                "shown_s": result.shown_s,
                "metrics": result.metrics,
                "errors": result.errors,
            }
        )

    async def _run(self, widgets: list[WidgetState] | None) -> RunResult | None:
        import websockets

        request = rerun_request(self.query_string, self.scenario.page, self.page_hash, widgets)
        start = time.perf_counter()
        try:
            async with asyncio.timeout(self.move_timeout_s):
                await self._ws.send(request)
                result = await self._read_run(start)
        except TimeoutError:
            self._fail(f"the run did not finish within {self.move_timeout_s:g} s")
            return None
        except websockets.ConnectionClosed as e:
            self._fail(f"the server closed the connection: {e}")
            return None
        result.seconds = time.perf_counter() - start
        self._adopt(result)
        return result

    async def _read_run(self, start: float) -> RunResult:
        result = RunResult()
        while True:
            msg = ForwardMsg()
            msg.ParseFromString(await self._ws.recv())
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                result.add_element(msg.delta.new_element)
                if result.shown_s is None and result.metrics:
                    result.shown_s = time.perf_counter() - start
            elif kind == "navigation":  # the page st.navigation resolved and runs (new_session's hash
                self.page_hash = msg.navigation.page_script_hash  # is only the one asked for)
            elif kind == "page_info_changed":
                self.query_string = msg.page_info_changed.query_string
            elif kind == "page_not_found":
                result.errors.append(f"page not found: {msg.page_not_found.page_name!r}")
            elif kind == "script_finished":
                if msg.script_finished != _FINISHED_EARLY:
                    if msg.script_finished == _COMPILE_ERROR:
                        result.errors.append("the script did not compile")
                    return result
                result = RunResult(shown_s=result.shown_s)  # a rerun follows and draws the page afresh

    def _adopt(self, result: RunResult) -> None:
        """The frontend's widget memory after a run: widgets not drawn are gone; a widget drawn
        again keeps the value it had unless the script set one."""
        self.widgets = {
            wid: ws if wid in result.server_set or wid not in self.widgets else self.widgets[wid]
            for wid, ws in result.widgets.items()
        }

    def _note(self, result: RunResult | None) -> None:
        if result is not None and result.errors:
            self.errors.append("; ".join(result.errors))
        if result is not None:
            self.warnings = _unique(self.warnings + result.warnings)

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.alive = False

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), 5)

    def record(self) -> dict:
        return {
            "page": self.scenario.page,
            "index": self.index,
            "first_run_s": self.first.seconds if self.first else None,
            "first_metrics": self.first.metrics if self.first else {},
            "moves": self.moves,
            "errors": self.errors,
            "warnings": self.warnings,
        }


# --- the class ----------------------------------------------------------------------------------------


def make_class(opts: ServeBenchOptions, base_url: str) -> list[StudentSession]:
    counts = {"text": opts.text_sessions, "images": opts.images_sessions}
    return [
        StudentSession(SCENARIOS[page], i, base_url, opts.move_timeout_s)
        for page, n in counts.items()
        for i in range(n)
    ]


async def _lesson(sessions: list[StudentSession], moves: int) -> None:
    """Everyone opens the page together; then, round by round, everyone still connected makes the
    move the teacher calls out, and the next round starts when the whole class has caught up."""
    start = time.perf_counter()
    await asyncio.gather(*(s.open() for s in sessions))
    print(f"first runs: {len(sessions)} sessions in {time.perf_counter() - start:.1f} s", flush=True)
    for i in range(moves):
        live = [s for s in sessions if s.alive]
        if not live:
            return
        start = time.perf_counter()
        await asyncio.gather(*(s.move(s.scenario.values[i % len(s.scenario.values)]) for s in live))
        print(
            f"move {i + 1}/{moves}: {len(live)} sessions in {time.perf_counter() - start:.1f} s", flush=True
        )


async def drive(opts: ServeBenchOptions, server: ServerHandle, seconds_left: float) -> dict:
    """Run the lesson against `server` within `seconds_left`; what completed is kept either way."""
    sessions = make_class(opts, server.url)
    rss: list[float] = []
    sampler = asyncio.create_task(_sample_rss(server.pid, rss)) if server.pid else None
    start, stopped_early = time.perf_counter(), False
    try:
        await asyncio.wait_for(_lesson(sessions, opts.moves), max(seconds_left, 0.001))
    except TimeoutError:
        stopped_early = True
    finally:
        if sampler is not None:
            sampler.cancel()
        await asyncio.gather(*(s.close() for s in sessions))
    return {
        "wall_s": time.perf_counter() - start,
        "stopped_early": stopped_early,
        "peak_rss_mb": max(rss) if rss else None,
        "rss_samples": len(rss),
        "sessions": [s.record() for s in sessions],
    }


# --- the report -------------------------------------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_stats(values: list[float]) -> dict:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {
        "n": len(values),
        "p50": _quantile(values, 0.5),
        "p95": _quantile(values, 0.95),
        "max": max(values),
    }


def _unique(lines: list[str], limit: int = 20) -> list[str]:
    return list(dict.fromkeys(lines))[:limit]


def page_summary(records: list[dict], moves: int) -> dict:
    move_s = [m["seconds"] for r in records for m in r["moves"]]
    shown_s = [m["shown_s"] for r in records for m in r["moves"] if m.get("shown_s") is not None]
    first_s = [r["first_run_s"] for r in records if r["first_run_s"] is not None]
    errors = [e for r in records for e in r["errors"]]
    return {
        "sessions": len(records),
        "moves_planned": len(records) * moves,
        "moves_completed": len(move_s),
        "move_s": latency_stats(move_s),
        "shown_s": latency_stats(shown_s),
        "first_run_s": latency_stats(first_s),
        "errors": len(errors),
        "error_messages": _unique(errors),
        "warnings": _unique([w for r in records for w in r["warnings"]]),
    }


def summarize(opts: ServeBenchOptions, server: ServerHandle, run: dict) -> dict:
    from tefviz.bench import describe_device

    pages = {
        page: page_summary([r for r in run["sessions"] if r["page"] == page], opts.moves)
        for page in SCENARIOS
        if any(r["page"] == page for r in run["sessions"])
    }
    options = {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()}
    return {
        "benchmark": "serve",
        "device": describe_device(),
        "cpus": os.cpu_count(),
        "options": options,
        "scenarios": {
            p: {"query": s.query, "slider": s.slider_key, "values": s.values} for p, s in SCENARIOS.items()
        },
        "server": {
            "url": server.url,
            "started_here": server.started_here,
            "peak_rss_mb": run["peak_rss_mb"],
            "rss_samples": run["rss_samples"],
        },
        "wall_s": run["wall_s"],
        "stopped_early": run["stopped_early"],
        "pages": pages,
        "sessions": run["sessions"],
    }


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def print_table(results: dict) -> None:
    o = results["options"]
    print(
        f"serve load test on {results['device']} ({results['cpus']} CPUs): {o['text_sessions']} Text + "
        f"{o['images_sessions']} Images sessions, {o['moves']} moves each, move timeout "
        f"{o['move_timeout_s']:g} s, max {o['max_seconds']:g} s"
    )
    print(
        f"{'page':8s} {'sessions':>8s} {'moves':>9s} {'p50 s':>7s} {'p95 s':>7s} {'max s':>7s} "
        f"{'shown p50':>9s} {'shown p95':>9s} {'first p50':>9s} {'first p95':>9s} {'errors':>6s}"
    )
    for page, p in results["pages"].items():
        m, f, sh = p["move_s"], p["first_run_s"], p.get("shown_s", latency_stats([]))
        print(
            f"{page:8s} {p['sessions']:8d} {p['moves_completed']:4d}/{p['moves_planned']:<4d} "
            f"{_fmt(m['p50']):>7s} {_fmt(m['p95']):>7s} {_fmt(m['max']):>7s} "
            f"{_fmt(sh['p50']):>9s} {_fmt(sh['p95']):>9s} "
            f"{_fmt(f['p50']):>9s} {_fmt(f['p95']):>9s} {p['errors']:6d}"
        )
        for line in p["error_messages"][:5]:
            print(f"  {page} error: {line}")
    rss = results["server"]["peak_rss_mb"]
    print("p50/p95/max: the move until the page's run finished; shown: until its first metric arrived")
    print(
        f"server peak RSS (worker process included): "
        f"{'not sampled (server started elsewhere)' if rss is None else f'{rss:.0f} MB'}"
        f"; wall {results['wall_s']:.1f} s"
        + ("; STOPPED at --max-seconds" if results["stopped_early"] else "")
    )


def run_serve_bench(opts: ServeBenchOptions) -> dict:
    """Start (or find) the server, run the lesson, print the table and save the JSON."""
    from tefviz.bench import save_results

    if min(opts.text_sessions, opts.images_sessions, opts.moves) < 0 or (
        opts.text_sessions + opts.images_sessions == 0
    ):
        raise InputError("give at least one session, and no negative counts")
    if opts.url is not None:
        check_local_url(opts.url)
    deadline = time.monotonic() + opts.max_seconds
    with app_server(opts.checkpoints, opts.url) as server:
        run = asyncio.run(drive(opts, server, deadline - time.monotonic()))
        results = summarize(opts, server, run)
        if server.log is not None and any(p["errors"] for p in results["pages"].values()):
            results["server"]["log_tail"] = _tail(server.log, 6000)  # the tracebacks behind the errors
    print_table(results)
    save_results(results, opts.out)
    return results
