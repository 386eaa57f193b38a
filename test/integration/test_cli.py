"""The pg_ray command-line client, the installed binary, against the test
cluster and the real Ray head: the verbs of "ray job" through the database.

Each test runs the program as a user would, with the connection settings in
PG* variables or on the command line, and checks its exit status, what it
printed, and what it did in the database."""

from __future__ import annotations

import hashlib
import json
import signal
import socket
import subprocess
import zipfile
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from conftest import CLIENT as BIN, RayHead, client_env, cluster_settings, run_client, wait_for, wait_for_state

ROLES = ("cli_alice", "cli_bob", "cli_carol")
run = run_client


@pytest.fixture
def users(db: psycopg.Connection) -> Iterator[dict[str, str]]:
    """Three login roles that may use pg_ray; cli_carol logs in with a password only."""
    for role in ROLES:
        db.execute(f"DROP ROLE IF EXISTS {role}")
    db.execute("DROP ROLE IF EXISTS it_password_login")
    db.execute("CREATE ROLE it_password_login")
    db.execute("CREATE ROLE cli_alice LOGIN IN ROLE ray_user")
    db.execute("CREATE ROLE cli_bob LOGIN IN ROLE ray_user")
    db.execute("CREATE ROLE cli_carol LOGIN PASSWORD 'carol secret' IN ROLE ray_user, it_password_login")
    yield {"cli_carol": "carol secret"}
    for role in ROLES:
        db.execute("DELETE FROM ray.job WHERE owner = %s", (role,))
        db.execute(f"DROP ROLE {role}")
    db.execute("DROP ROLE it_password_login")


def job_count(db: psycopg.Connection) -> int:
    return db.execute("SELECT count(*) FROM ray.job").fetchone()[0]


def submitted_id(stderr_or_stdout: str) -> int:
    line = next(line for line in stderr_or_stdout.splitlines() if " submitted to resource group " in line)
    return int(line.split()[1])


def read_until(process: subprocess.Popen[str], text: str) -> None:
    """Read the process's stdout up to a line with text in it (the log has it
    once the job printed it, so this ends)."""
    assert process.stdout is not None
    for line in process.stdout:
        if text in line:
            return
    pytest.fail(f"the output ended without {text!r}")


def make_app(root: Path) -> Path:
    """A working directory with files Ray would leave out: .git, ignored by
    .gitignore, by a .rayignore below the root, and by runtime_env excludes."""
    app = root / "app"
    (app / ".git").mkdir(parents=True)
    (app / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (app / "pkg").mkdir()
    (app / "data").mkdir()
    (app / "main.py").write_text(
        "import os, sys\n"
        "from pkg.helper import GREETING\n"
        "files = sorted(os.path.join(d, f)[2:] for d, _, fs in os.walk('.') for f in fs)\n"
        "print(GREETING, 'args:', sys.argv[1:])\n"
        "print('files:', ' '.join(files))\n")
    (app / "pkg" / "__init__.py").write_text("")
    (app / "pkg" / "helper.py").write_text("GREETING = 'hello from the client'\n")
    (app / ".gitignore").write_text("# build output\n*.bin\n/build/\n")
    (app / "model.bin").write_text("ignored by .gitignore\n")
    (app / "build").mkdir()
    (app / "build" / "out.txt").write_text("ignored directory\n")
    (app / "data" / ".rayignore").write_text("*.csv\n!keep.csv\n")
    (app / "data" / "big.csv").write_text("ignored by data/.rayignore\n")
    (app / "data" / "keep.csv").write_text("kept by a negation\n")
    (app / "notes.tmp").write_text("ignored by runtime_env excludes\n")
    return app


@pytest.mark.parametrize("verb", [[], ["job"], ["group"], ["job", "submit"], ["job", "list"],
                                  ["job", "status"], ["job", "logs"], ["job", "stop"],
                                  ["group", "list"], ["group", "status"]])
def test_every_verb_has_help(verb: list[str]) -> None:
    result = run(*verb, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and BIN.name in result.stdout
    if len(verb) == 2:
        assert "--dbname" in result.stdout and "--format" in result.stdout


def test_submit_with_working_dir_follows_to_success(db: psycopg.Connection, ray_group: str,
                                                    tmp_path: Path) -> None:
    app = make_app(tmp_path)
    result = run("job", "submit", "--resource-group", ray_group, "--working-dir", str(app),
                 "--runtime-env-json", '{"excludes": ["*.tmp"], "env_vars": {"A": "1"}}',
                 "--metadata-json", '{"team": "ads"}',
                 "--", "python", "main.py", "two words", "it's")
    assert result.returncode == 0, result.stderr
    # the driver's output on stdout, what happened to the job on stderr
    assert "hello from the client args: ['two words', \"it's\"]" in result.stdout
    files = next(line for line in result.stdout.splitlines() if line.startswith("files:")).split()[1:]
    assert sorted(files) == [".gitignore", "data/.rayignore", "data/keep.csv", "main.py",
                             "pkg/__init__.py", "pkg/helper.py"]
    job = submitted_id(result.stderr)
    assert f"Job {job} succeeded." in result.stderr
    row = db.execute("SELECT state, owner, entrypoint, runtime_env, metadata FROM ray.job WHERE job_id = %s",
                     (job,)).fetchone()
    assert row[0:3] == ("SUCCEEDED", "postgres", "python main.py 'two words' 'it'\\''s'")
    assert row[3] == {"excludes": ["*.tmp"], "env_vars": {"A": "1"}} and row[4] == {"team": "ads"}


def test_working_dir_in_runtime_env_is_zipped_and_json_output(db: psycopg.Connection, ray_group: str,
                                                              tmp_path: Path) -> None:
    app = make_app(tmp_path)
    result = run("job", "submit", "-g", ray_group, "--format", "json",
                 "--runtime-env-json", json.dumps({"working_dir": str(app)}), "--", "python", "main.py")
    assert result.returncode == 0, result.stderr
    row = json.loads(result.stdout)
    assert row["state"] == "SUCCEEDED" and row["resource_group"] == ray_group
    # the log is for the eyes, on stderr
    assert "hello from the client" in result.stderr and "notes.tmp" in result.stderr
    status = json.loads(run("job", "status", str(row["job_id"]), "--format=json").stdout)
    assert status["state"] == "SUCCEEDED"
    assert [e["to_state"] for e in status["events"]][0] == "QUEUED"
    assert status["events"][-1]["to_state"] == "SUCCEEDED"
    assert db.execute("SELECT runtime_env FROM ray.job WHERE job_id = %s", (row["job_id"],)).fetchone()[0] == {}


def test_zip_file_uri_and_help_words_of_the_entrypoint(db: psycopg.Connection, ray_group: str,
                                                       ray_head: RayHead, tmp_path: Path) -> None:
    # a .zip goes as it is, as Ray takes one
    archive = tmp_path / "app.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("hello.py", "print('from the zip')\n")
    result = run("job", "submit", "-g", ray_group, "--working-dir", str(archive), "--", "python", "hello.py")
    assert result.returncode == 0 and "from the zip" in result.stdout, result.stderr
    job = submitted_id(result.stderr)
    [submission] = ray_head.submissions_of(job)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:40]
    assert submission["runtime_env"]["working_dir"] == f"gcs://_ray_pkg_{digest}.zip"
    # once the job has finished, no attempt needs it: it is not kept
    assert db.execute("SELECT count(*) FROM ray.job_package WHERE job_id = %s", (job,)).fetchone()[0] == 0

    # a remote working_dir is Ray's to fetch: left in runtime_env; and the
    # entrypoint's own --help (no "--" needed) is the entrypoint's
    result = run("job", "submit", "-g", ray_group, "--no-wait",
                 "--runtime-env-json", '{"working_dir": "s3://bucket/app.zip"}', "python", "x.py", "--help")
    assert result.returncode == 0, result.stderr
    job = int(result.stdout)
    assert db.execute("SELECT entrypoint, runtime_env FROM ray.job WHERE job_id = %s", (job,)).fetchone() == \
        ("python x.py --help", {"working_dir": "s3://bucket/app.zip"})
    run("job", "stop", str(job), "--wait")
    assert run("job", "-?").returncode == 0 and run("job", "status", "-?").stdout.startswith("Show a job")


def test_failing_job_exits_non_zero_with_its_log(ray_group: str) -> None:
    result = run("job", "submit", "-g", ray_group, "--",
                 "python", "-c", "import sys; print('about to fail', flush=True); sys.exit(3)")
    assert result.returncode == 1
    assert "about to fail" in result.stdout
    job = submitted_id(result.stderr)
    assert f"Job {job} failed." in result.stderr
    assert "exit code 3" in result.stderr
    # Ray's message repeats the log; the client says only why
    assert result.stderr.count("about to fail") == 0

    logs = run("job", "logs", str(job))
    assert logs.returncode == 0 and "about to fail" in logs.stdout
    status = run("job", "status", str(job))
    assert status.returncode == 0
    assert status.stdout.startswith(f"Job {job}: FAILED") and "Exit code       3" in status.stdout


def test_jobs_are_private_between_users(db: psycopg.Connection, ray_group: str,
                                        users: dict[str, str]) -> None:
    submitted = run("job", "submit", "-g", ray_group, "--no-wait", "--", "sleep", "60", user="cli_alice")
    assert submitted.returncode == 0, submitted.stderr
    # the id alone on stdout, for scripts
    job = int(submitted.stdout)
    assert submitted_id(submitted.stderr) == job

    alice = run("job", "list", user="cli_alice")
    assert alice.returncode == 0 and alice.stdout.splitlines()[0].split()[:3] == ["JOB", "ID", "GROUP"]
    assert [line.split()[0] for line in alice.stdout.splitlines()[1:]] == [str(job)]
    assert "cli_alice" in alice.stdout and "sleep 60" in alice.stdout
    assert [j["job_id"] for j in json.loads(run("job", "list", "--format", "json", user="cli_alice").stdout)] == [job]
    wait_for_state(db, job, {"RUNNING"})
    assert str(job) in run("job", "list", "--state", "running", "-g", ray_group, user="cli_alice").stdout
    assert run("job", "list", "--state", "FAILED", user="cli_alice").stdout == "No jobs.\n"

    bob = run("job", "list", user="cli_bob")
    assert bob.returncode == 0 and bob.stdout == "No jobs.\n"
    assert json.loads(run("job", "list", "--format", "json", user="cli_bob").stdout) == []
    status = run("job", "status", str(job), user="cli_bob")
    assert status.returncode == 1 and f"job {job} does not exist" in status.stderr
    for verb in ("logs", "stop"):
        denied = run("job", verb, str(job), user="cli_bob")
        # the server's error, printed as psql prints it
        assert denied.returncode == 1
        assert f"ERROR:  job {job} does not exist\nHINT:  " in denied.stderr
    assert db.execute("SELECT state <> 'STOPPED' FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0]

    # an admin sees everyone's
    assert str(job) in run("job", "list", "--limit", "0").stdout
    stopped = run("job", "stop", str(job), "--wait", user="cli_alice")
    assert stopped.returncode == 0, stopped.stderr
    assert f"Job {job} was stopped." in stopped.stderr
    assert db.execute("SELECT state, stopped_by FROM ray.job WHERE job_id = %s", (job,)).fetchone() == \
        ("STOPPED", "cli_alice")


def test_stop_ends_a_follower_and_interrupt_leaves_the_job(db: psycopg.Connection, ray_group: str) -> None:
    submitted = run("job", "submit", "-g", ray_group, "--no-wait", "--",
                    "python", "-c", "import time; print('tick', flush=True); time.sleep(120)")
    job = int(submitted.stdout)
    wait_for_state(db, job, {"RUNNING"})

    # ^C stops following, not the job
    env = client_env()
    follower = subprocess.Popen([str(BIN), "job", "logs", "--follow", str(job)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    read_until(follower, "tick")
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=30)
    assert follower.returncode == 130
    assert f"\"pg_ray job stop {job}\" stops it" in err
    assert db.execute("SELECT state FROM ray.job WHERE job_id = %s", (job,)).fetchone()[0] == "RUNNING"

    # a follower returns once the job is stopped by someone else
    follower = subprocess.Popen([str(BIN), "job", "logs", "-f", str(job)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    read_until(follower, "tick")
    stop = run("job", "stop", str(job))
    assert stop.returncode == 0 and f"Stop of job {job} requested." in stop.stderr
    out, err = follower.communicate(timeout=120)
    assert follower.returncode == 0
    assert f"Job {job} was stopped." in err
    again = run("job", "stop", str(job), "--format", "json")
    assert again.returncode == 0 and f"NOTICE:  job {job} has already finished: STOPPED" in again.stderr
    assert json.loads(again.stdout)["state"] == "STOPPED"
    logs = json.loads(run("job", "logs", str(job), "--format", "json").stdout)
    assert logs["job_id"] == job and "tick" in logs["log"]


@pytest.mark.parametrize("args, message", [
    (["job", "submit", "-g", "it-ray"], "no entrypoint given"),
    (["job", "submit", "--", "true"], "no resource group given"),
    (["job", "submit", "-g", "it-ray", "--bogus", "--", "true"], "unrecognized option \"--bogus\""),
    (["job", "submit", "-g", "it-ray", "--working-dir", "/nonexistent/app", "--", "true"],
     "could not read working directory \"/nonexistent/app\": No such file or directory"),
    (["job", "submit", "-g", "it-ray", "--working-dir", "/etc/hostname", "--", "true"],
     "working directory \"/etc/hostname\" is not a directory"),
    (["job", "submit", "-g", "it-ray", "--runtime-env-json", "{not json", "--", "true"],
     "--runtime-env-json is not valid JSON"),
    (["job", "submit", "-g", "it-ray", "--metadata-json", "[1]", "--", "true"],
     "--metadata-json must be a JSON object"),
    (["job", "submit", "-g", "it-ray", "--entrypoint-num-cpus", "lots", "--", "true"],
     "ERROR:  invalid input syntax for type numeric: \"lots\""),
    (["job", "submit", "-g", "no-such-group", "--", "true"],
     "ERROR:  resource group \"no-such-group\" does not exist"),
    (["job", "status"], "no job id given"),
    (["job", "status", "12abc"], "invalid job id \"12abc\""),
    (["job", "logs", "1", "2"], "too many arguments"),
    (["job", "list", "--limit", "-1"], "invalid limit \"-1\""),
    (["job", "list", "--format", "yaml"], "invalid output format \"yaml\""),
    (["job", "list", "--state", "DONE"], "invalid job state \"DONE\"; it is one of QUEUED,"),
    (["job", "list", "--limit"], "option \"--limit\" needs an argument"),
    (["job", "logs", "-x", "1"], "unrecognized option \"-x\""),
    (["job", "submit", "--no-wait=1", "--", "true"], "option \"--no-wait\" takes no argument"),
    (["job", "logs", "-f", "--format", "json", "1"], "--follow prints the log as text"),
    (["job", "stop", "0"], "invalid job id \"0\""),
    (["job", "frobnicate"], "unknown job command \"frobnicate\""),
    (["group", "status"], "no resource group name given"),
    (["group", "status", "no-such-group"], "resource group \"no-such-group\" does not exist"),
    (["cluster"], "unknown command \"cluster\""),
    ([], "no command given"),
])
def test_bad_arguments_fail_clearly_and_submit_nothing(db: psycopg.Connection, ray_group: str,
                                                       tmp_path: Path, args: list[str],
                                                       message: str) -> None:
    before = job_count(db)
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith(("pg_ray: error: ", "ERROR:  "))
    assert job_count(db) == before


def test_server_errors_keep_detail_and_hint(db: psycopg.Connection, ray_group: str,
                                            users: dict[str, str], tmp_path: Path) -> None:
    db.execute("SELECT ray.create_resource_group('cli-private')")
    try:
        result = run("job", "submit", "-g", "cli-private", "--", "true", user="cli_bob")
        assert result.returncode == 1
        assert result.stderr == ('ERROR:  permission denied for resource group "cli-private"\n'
                                 "HINT:  A ray_admin can grant it with SELECT ray.grant_usage('cli-private', 'cli_bob').\n")
        # a working directory with nothing to upload is refused before anything is sent
        (tmp_path / "empty" / ".git").mkdir(parents=True)
        (tmp_path / "empty" / ".gitignore").write_text("*\n")
        before = job_count(db)
        empty = run("job", "submit", "-g", ray_group, "--working-dir", str(tmp_path / "empty"), "--", "true")
        assert empty.returncode == 1 and "has no files to upload" in empty.stderr
        assert job_count(db) == before
    finally:
        db.execute("SELECT ray.drop_resource_group('cli-private', force => true)")


def test_connection_settings_the_libpq_way(users: dict[str, str], tmp_path: Path) -> None:
    s = cluster_settings()
    url = f"postgresql://cli_carol@127.0.0.1:{s['PGPORT']}/postgres"

    wrong = run("job", "list", "-d", url, "-w", env={"PGPASSWORD": "not it"})
    assert wrong.returncode == 2
    assert wrong.stderr.startswith("pg_ray: error: connection to server at \"127.0.0.1\"")
    assert 'password authentication failed for user "cli_carol"' in wrong.stderr

    missing = run("job", "list", "-d", url, "-w")
    assert missing.returncode == 2 and "no password supplied" in missing.stderr

    in_uri = run("job", "list", "-d", f"postgresql://cli_carol:carol%20secret@127.0.0.1:{s['PGPORT']}/postgres")
    assert in_uri.returncode == 0 and in_uri.stdout == "No jobs.\n", in_uri.stderr

    passfile = tmp_path / "pgpass"
    passfile.write_text(f"127.0.0.1:{s['PGPORT']}:postgres:cli_carol:carol secret\n")
    passfile.chmod(0o600)
    from_file = run("group", "list", "-h", "127.0.0.1", "-U", "cli_carol", env={"PGPASSFILE": str(passfile)})
    assert from_file.returncode == 0 and "it-ray" in from_file.stdout, from_file.stderr

    conninfo = run("job", "list", "-d", f"host=127.0.0.1 port={s['PGPORT']} user=cli_carol dbname=postgres",
                   env={"PGPASSFILE": str(passfile)})
    assert conninfo.returncode == 0, conninfo.stderr

    # a service file names it all
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[warehouse]\nhost=127.0.0.1\nport={s['PGPORT']}\nuser=cli_carol\ndbname=postgres\n")
    service = run("group", "list", "-d", "service=warehouse",
                  env={"PGSERVICEFILE": str(services), "PGPASSFILE": str(passfile)})
    assert service.returncode == 0 and "it-ray" in service.stdout, service.stderr
    by_env = run("job", "list", env={"PGSERVICEFILE": str(services), "PGSERVICE": "warehouse",
                                     "PGPASSFILE": str(passfile)})
    assert by_env.returncode == 0 and by_env.stdout == "No jobs.\n", by_env.stderr


def test_unreachable_server_exits_2() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run("job", "list", "-h", "127.0.0.1", "-p", str(port))
    assert result.returncode == 2
    assert f'connection to server at "127.0.0.1", port {port} failed' in result.stderr
    assert "Connection refused" in result.stderr


def test_group_list_and_status(ray_group: str) -> None:
    listed = run("group", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[0].split() == ["NAME", "PROVIDER", "STATE", "WORKERS", "MIN-MAX",
                                                     "RAY", "OWNER"]
    row = next(line.split() for line in listed.stdout.splitlines() if line.startswith(ray_group + " "))
    assert row[1:3] == ["external", "READY"]
    groups = json.loads(run("group", "list", "--format", "json").stdout)
    assert any(g["name"] == ray_group and g["state"] == "READY" for g in groups)
    assert all("token" not in json.dumps(g).lower() for g in groups)

    status = run("group", "status", ray_group)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"Resource group {ray_group}: READY since ")
    # what "ray status" prints, from the group's head
    assert "Node status" in status.stdout and "Resources" in status.stdout
    report = json.loads(run("group", "status", ray_group, "--format", "json").stdout)
    assert report["name"] == ray_group and "Node status" in report["ray_status"]
    assert report["ray_status_error"] is None


def test_queued_jobs_show_their_place_priority_and_why_they_wait(db: psycopg.Connection, group: str) -> None:
    """On a group that never becomes ready (local nodes are off here), jobs queue:
    job list shows each one's place, job status its priority, place and reason."""
    low, high = (int(run("job", "submit", "-g", group, "--no-wait", "--priority", priority,
                         "--", "true").stdout) for priority in ("0", "5"))
    listed = {line.split()[0]: line for line in run("job", "list", "-g", group).stdout.splitlines()[1:]}
    assert "QUEUED #1" in listed[str(high)] and "QUEUED #2" in listed[str(low)]
    wait_for(lambda: db.execute("SELECT message LIKE 'waiting for resource group%%' FROM ray.job WHERE job_id = %s",
                                (high,)).fetchone()[0], "the worker to say why the job waits")
    status = run("job", "status", str(high)).stdout
    assert "Priority        5" in status
    assert f"Queue position  1 in the queue of resource group {group}" in status
    assert f'waiting for resource group "{group}" to become ready' in status
    refused = run("job", "submit", "-g", group, "--no-wait", "--priority", "5000", "--", "true")
    assert refused.returncode != 0 and "priority must be from -1000 to 1000, not 5000" in refused.stderr
    db.execute("SELECT ray.stop_job(j) FROM unnest(%s::bigint[]) j", ([low, high],))
