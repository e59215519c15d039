"""Train PPO/MAPPO with OpenRL 0.2.0, optionally under the watchdog.

Keeps the MAPush ``train.sh`` command line (``--num_envs --train_timesteps --algo --config
--checkpoint --exp_name --task --seed --use_tensorboard --headless --rl_device`` plus any OpenRL
flag such as ``--hidden_size 256 --layer_N 2``) and adds ``--watchdog``, ``--watchdog_config``,
``--safe_config``, ``--run_dir``, ``--inject`` and ``--save_interval``.

    python openrl_ws/train.py --watchdog            # short watched run on the embedded push_lite
    torchrun --nproc_per_node 2 openrl_ws/train.py --watchdog   # data-parallel (openrl_ws/distributed.py)

Exit codes: 0 finished, 1 stopped by the watchdog (rollback budget spent; or a resource stop, whose
`stop` event says `restartable: true` and which prints the resume command: `watchdog run` restarts
it), 2 bad input, 3 training died on non-finite numbers (without --watchdog: the crash the watchdog
exists to prevent).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python openrl_ws/train.py` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
START_SAFE_CONFIG = "start_safe_config.yaml"  # --start_safe's merged config, in the run dir
DEFAULTS = {"watchdog_config": ROOT / "cfgs" / "watchdog.yaml", "safe_config": ROOT / "cfgs" / "ppo_safe.yaml"}
EXIT_OK, EXIT_STOPPED, EXIT_BAD_INPUT, EXIT_DIVERGED = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                epilog="Unknown flags are passed to OpenRL's config parser (e.g. --hidden_size 256).")
    p.add_argument("--task", default="push_lite", help="push_lite (embedded, default) | go1push_mid | go1push_upper")
    p.add_argument("--num_envs", type=int, default=64)
    p.add_argument("--train_timesteps", type=int, default=None,
                   help="total env steps (default: 60 PPO iterations)")
    p.add_argument("--algo", choices=("ppo", "mappo"), default="ppo")
    p.add_argument("--config", default=None, help="PPO config YAML (cfgs/ppo.yaml layout)")
    p.add_argument("--checkpoint", default=None, help="resume from an OpenRL module.pt or our checkpoint dir")
    p.add_argument("--exp_name", default="push")
    p.add_argument("--seed", type=int, default=None, help="default: --config's seed, else 0")
    p.add_argument("--use_tensorboard", action="store_true", help="write TensorBoard events (on by default with --watchdog)")
    p.add_argument("--headless", action="store_true", help="accepted for MAPush compatibility")
    p.add_argument("--rl_device", default=None, help="cpu | cuda:0 (default: cuda when available)")
    p.add_argument("--watchdog", action="store_true", help="watch the run: detect divergence, roll back, switch config")
    p.add_argument("--watchdog_config", default=str(DEFAULTS["watchdog_config"]))
    p.add_argument("--safe_config", default=str(DEFAULTS["safe_config"]))
    p.add_argument("--start_safe", action="store_true",
                   help="start on --safe_config's hyper-parameters over --config (its start-up keys kept), as after a "
                        "rollback: the way to resume a run that had switched")
    p.add_argument("--run_dir", default=None, help="run directory (default results/<date>_<exp_name>)")
    p.add_argument("--inject", action="append", default=[], metavar="KIND@START[-END][:VALUE]",
                   help="deterministic fault, repeatable: reward_scale@30-34:50, nan@60, lr_spike@30:100, obs_noise@50-55:5, "
                        "crash@7, mem_leak@20:64 (MiB held per iteration), slow@30:3 (slow-down factor)")
    p.add_argument("--save_interval", type=int, default=10_000_000,
                   help="env steps between OpenRL-compatible rl_model_<steps>_steps/module.pt (default 10M, as MAPush)")
    p.add_argument("--episode_length", type=int, default=None, help="rollout length per env (default: config, else 100)")
    p.add_argument("--torch_threads", type=int, default=1,
                   help="torch CPU threads (default 1: for PPO-sized networks more threads only add overhead)")
    p.add_argument("--status_every", type=int, default=None, metavar="N",
                   help="without a terminal (logs, CI, SLURM): a status line every N iterations (default "
                        "$WATCHDOG_STATUS_EVERY, else 10); on a terminal a live footer shows it all the time")
    return p


def _fail(message: str) -> int:
    print(f"train.py: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def parse_openrl_args(parser, argv: list[str]):
    """OpenRL's config parser on the flags train.py does not know: a flag it does not know either, or a value of the
    wrong type, is one line (InputError), not its 130-line usage block."""
    from watchdog.errors import InputError

    parser.exit_on_error = False
    try:
        return parser.parse_args(argv)
    except Exception as exc:  # jsonargparse's ArgumentError
        said = " ".join(str(exc).split())
        raise InputError(f"OpenRL's config: {said}",
                         hint="the flags python -m openrl_ws.train --help does not list go to OpenRL's parser") from exc


def check_command_line_values(cfg, flags: list[str]) -> None:
    """The values of the PPO config's keys given as OpenRL flags (``--lr 0``, ``--ppo_epoch 0``), held to the rules a
    ``--config`` file's are (``PPOConfig``): one line, exit 2. Until session 22 they went to OpenRL as they were: a
    traceback at the first update (ZeroDivisionError), or a run trained on a gamma of 2 or a negative clip, exit 0."""
    from watchdog.config import PPOConfig, validate_mapping

    given = {flag[2:].split("=", 1)[0] for flag in flags if flag.startswith("--")}
    values = {key: getattr(cfg, key) for key in PPOConfig.model_fields if key in given and hasattr(cfg, key)}
    validate_mapping(PPOConfig, values, source="train.py's command line")


def _checkpoint_path(raw: str | None) -> Path | None:
    """MAPush's train.sh passes `<dir>/None` for 'no checkpoint'."""
    if raw is None or Path(raw).name == "None":
        return None
    return Path(raw)


def main(argv: list[str] | None = None) -> int:
    from watchdog.errors import ReaderMayLeave

    stdout = sys.stdout  # a reader of the output that leaves (`| head`, a dead tee) does not end the training
    sys.stdout = ReaderMayLeave(stdout)
    try:
        return _main(argv)
    finally:
        sys.stdout = stdout


def _main(argv: list[str] | None) -> int:
    from watchdog.quiet import quiet_dependency_warnings

    quiet_dependency_warnings()  # before openrl imports gym and treevalue
    args, openrl_argv = build_parser().parse_known_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the resume command
    from watchdog.config import load_ppo_config, load_watchdog_config
    from watchdog.errors import NonFiniteTraining, WatchdogError

    try:  # everything that can be wrong with the input, before anything is built
        from openrl_ws.inject import FaultSchedule

        for flag in ("checkpoint", "run_dir", "config", "watchdog_config", "safe_config"):
            if getattr(args, flag) == "":  # an unset variable: "" is this folder to Path (until session 22 a resume
                # from ./module.pt, or a run in results/ that was asked to be elsewhere)
                return _fail(f'--{flag} is empty (an unset variable?); give a path, or leave the flag out')
        safe = load_ppo_config(args.safe_config)
        if args.start_safe:  # the run's own config with the safe config's hyper-parameters on top, start-up keys its own
            import tempfile

            from watchdog.supervise import write_safe_config

            fd, merged = tempfile.mkstemp(prefix="ppo_start_safe.", suffix=".yaml")
            os.close(fd)
            args.start_safe_tmp = merged  # read by OpenRL's parser, kept in the run dir, deleted at the end (below)
            args.config = str(write_safe_config(args.config, Path(args.safe_config), Path(merged), by="--start_safe"))
        base = load_ppo_config(args.config)
        wd_cfg = load_watchdog_config(args.watchdog_config)  # (a bad file is said with or without --watchdog)
        if not args.watchdog:
            if args.watchdog_config != str(DEFAULTS["watchdog_config"]):
                print(f"train.py: note: --watchdog_config {args.watchdog_config} is read with --watchdog only: this "
                      "run is not watched (add --watchdog to watch it)", file=sys.stderr)
            wd_cfg = None
        faults = FaultSchedule.from_specs(args.inject)
        checkpoint = _checkpoint_path(args.checkpoint)
        if checkpoint is not None and not checkpoint.exists():
            return _fail(f"{checkpoint}: checkpoint not found (give an OpenRL module.pt or a watchdog checkpoint dir)")
        from watchdog.config import MAX_ENVS, MAX_EPISODE_LENGTH

        if not 1 <= args.num_envs <= MAX_ENVS:  # (a number past it was a traceback from the env's tensors until session 28)
            return _fail(f"--num_envs must be in 1..{MAX_ENVS}, got {args.num_envs}")
        from watchdog.distributed import env_world_size

        top = 2**31 - env_world_size()  # numpy's seeds, rank r seeding with seed + r (a traceback until session 22)
        seed_from = "--seed"
        if args.seed is None:  # the config's (until session 28 the flag's default 0 won over it, said effective by check)
            args.seed, seed_from = (base.seed, f"{args.config}'s seed") if base.seed is not None else (0, "--seed")
        if not 0 <= args.seed <= top:
            return _fail(f"{seed_from} must be in 0..{top}, got {args.seed}")
        from watchdog.eventlog import EVENTS_FILENAME
        from watchdog.supervise import RESTART_ENV

        if args.run_dir:  # a path the system refuses (a name too long): a traceback until session 22
            try:
                os.stat(args.run_dir)
            except (FileNotFoundError, NotADirectoryError):  # (said below: a folder to create, a file in its path)
                pass
            except OSError as exc:
                return _fail(f"--run_dir {args.run_dir[:80]}{'...' if len(args.run_dir) > 80 else ''}: {exc.strerror}; "
                             "give a shorter or another path")
        if (args.run_dir and checkpoint is None and not os.environ.get(RESTART_ENV)
                and (Path(args.run_dir) / EVENTS_FILENAME).exists()):
            # a fresh run there wrote over the first's checkpoints, and replay read the two as one (until session 17)
            return _fail(f"--run_dir {args.run_dir} holds a run already (its {EVENTS_FILENAME}); resume it with "
                         "--checkpoint, or give a new --run_dir")
        if args.status_every is not None and args.status_every < 1:
            return _fail(f"--status_every must be >= 1, got {args.status_every}")
        # (until session 17: 0 meant the default, a negative --train_timesteps trained "-3 iterations", a negative
        # --save_interval hung after iteration 0, a negative --episode_length was a traceback)
        for flag, value, least in (("--train_timesteps", args.train_timesteps, 1),
                                   ("--episode_length", args.episode_length, 1), ("--torch_threads", args.torch_threads, 1),
                                   ("--save_interval", args.save_interval, 0)):  # 0: no OpenRL module.pt
            if value is not None and value < least:
                return _fail(f"{flag} must be >= {least}, got {value}")
        if args.episode_length is not None and args.episode_length > MAX_EPISODE_LENGTH:
            return _fail(f"--episode_length must be <= {MAX_EPISODE_LENGTH}, got {args.episode_length}")
        if args.rl_device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", args.rl_device):
            return _fail(f"--rl_device must be cpu, cuda or cuda:N, got {args.rl_device!r}")
        if faults.max_rank() >= env_world_size():
            return _fail(f"--inject names rank {faults.max_rank()} but the world size is {env_world_size()} "
                         "(launch with torchrun --nproc_per_node N)")
        return _train(args, openrl_argv, base, safe, wd_cfg, faults, checkpoint)
    except WatchdogError as err:
        return _fail(str(err))
    except KeyboardInterrupt:  # (a traceback from OpenRL's internals until session 17)
        print("train.py: interrupted; the logs, stable checkpoints and event log written so far are kept"
              + _resume_after_interrupt(args), file=sys.stderr)
        return 130
    except NonFiniteTraining as exc:
        advice = ("resume from its last stable checkpoint, or run it under `watchdog run --`" if args.watchdog
                  else "rerun with --watchdog to roll back instead")
        print(f"train.py: training diverged: {exc}; log and checkpoints so far are in the run directory; {advice}",
              file=sys.stderr)
        return EXIT_DIVERGED
    finally:  # (one merged YAML left in /tmp per resume until session 20)
        if getattr(args, "start_safe_tmp", None):
            Path(args.start_safe_tmp).unlink(missing_ok=True)


def _train(args, openrl_argv, base, safe, wd_cfg, faults, checkpoint) -> int:
    import torch

    from openrl.configs.config import create_config_parser
    from openrl.modules.common import PPONet  # before callbacks: OpenRL 0.2.0's import cycle
    from openrl.runners.common import PPOAgent

    from openrl_ws.envs import make_env
    from openrl_ws.hook import WatchSession, make_driver_class
    from openrl_ws.run_logger import RunLogger
    from openrl_ws.live_config import set_learning_rates
    from openrl_ws.snapshot import load_checkpoint_into
    from watchdog.config import STARTUP_PPO_KEYS
    from watchdog.console import WatchdogConsole
    from watchdog.errors import InputError, NonFiniteTraining
    from watchdog.pipeline import Watchdog
    from watchdog.resources import ResourceSampler
    from watchdog.supervise import RESTART_ENV, get_flag

    device = args.rl_device or ("cuda:0" if torch.cuda.is_available() else "cpu")
    # --- data-parallel under torchrun (WORLD_SIZE > 1); None in a single process -------------------
    from openrl_ws import distributed as ows_dist

    dist_ctx = ows_dist.setup(device)
    if device.startswith("cuda") and not torch.cuda.is_available():  # the env fell back to the CPU, the net did not
        # (under torchrun, setup said which rank wanted which GPU)
        raise InputError(f"--rl_device {device}: this torch sees no CUDA device (a CPU build, or no GPU here)",
                         hint="--rl_device cpu, or leave it out")
    console = WatchdogConsole(status_every=args.status_every)
    rank = dist_ctx.rank if dist_ctx is not None else 0
    if dist_ctx is not None and str(device).startswith("cuda"):
        device = f"cuda:{torch.cuda.current_device()}"
    faults, not_repeated = faults.for_rank(rank).this_attempt()
    if not_repeated and rank == 0:
        console.message(not_repeated)
    episode_length = args.episode_length or base.episode_length or 100
    if args.start_safe or _merged_safe_config(args.config):
        openrl_argv = _safe_over_flags(openrl_argv, args.safe_config, console)
    own_flags = list(openrl_argv)
    if args.config:
        openrl_argv = ["--config", args.config, *openrl_argv]
    openrl_argv += ["--episode_length", str(episode_length), "--seed", str(args.seed)]
    if get_flag(own_flags, "--log_interval") is None:  # (appended after the user's, it overrode theirs until session 31)
        openrl_argv += ["--log_interval", str(base.log_interval or 5)]
    cfg = parse_openrl_args(create_config_parser(), openrl_argv)
    check_command_line_values(cfg, own_flags)
    total = args.train_timesteps or 60 * episode_length * args.num_envs
    if total < episode_length * args.num_envs:  # (trained 0 iterations and said "finished", exit 0, until session 19)
        raise InputError(f"--train_timesteps {total} is less than one iteration ({args.num_envs} envs x {episode_length} "
                         f"steps = {episode_length * args.num_envs} env steps)", hint="raise --train_timesteps")
    iterations = total // (episode_length * args.num_envs)
    run_dir = Path(args.run_dir or ROOT / "results" / f"{time.strftime('%m-%d-%H-%M-%S')}_{args.exp_name}")
    args.run_dir_used = run_dir  # (where an interrupted run's resume command points)
    if dist_ctx is not None:  # one run dir (rank 0's clock); only rank 0 prints
        from watchdog.distributed import broadcast_object

        run_dir = Path(broadcast_object(str(run_dir)))
        if not dist_ctx.is_main:
            console = WatchdogConsole(open(os.devnull, "w"))

    if args.torch_threads > 0:
        torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (rank 0's are broadcast anyway)
    env = make_env(args.task, args.num_envs, device=device, seed=args.seed + rank, centralized_critic=args.algo == "mappo")
    batch = episode_length * args.num_envs * env.agent_num
    for name, minis in (("num_mini_batch", cfg.num_mini_batch), (f"{args.safe_config}'s num_mini_batch", safe.num_mini_batch)):
        if minis is not None and minis > batch:  # OpenRL's assertion at the first update (or after a rollback), until session 19
            raise InputError(f"{name} {minis} is more than one iteration's batch ({args.num_envs} envs x {episode_length} "
                             f"steps x {env.agent_num} agents = {batch})",
                             hint="lower num_mini_batch, or raise --num_envs or episode_length")
    net = PPONet(env, cfg=cfg, device=device)
    start_iteration, loaded = 0, None
    if checkpoint is not None:
        loaded = load_checkpoint_into(net.module, checkpoint)
        # the checkpoint brings moments and step counts; this command line's config brings the rates
        set_learning_rates(net.module, {"lr": cfg.lr, "critic_lr": cfg.critic_lr})
        start_iteration = _resume_iteration(loaded, checkpoint, episode_length * args.num_envs)
        if start_iteration >= iterations:  # (trained 0 iterations and said "finished", exit 0, until session 31)
            raise InputError(f"--train_timesteps {total} ends at iteration {iterations}, at or before the checkpoint's "
                             f"next iteration {start_iteration}: nothing to train", path=str(checkpoint),
                             hint=f"raise --train_timesteps above {start_iteration * episode_length * args.num_envs}: "
                             "it counts the run's whole length, not what is left")
        console.message(f"resumed from {loaded['kind']} checkpoint {checkpoint}"
                        + (f"; continuing at iteration {start_iteration}" if start_iteration else ""))
    if dist_ctx is not None:
        dist_ctx.attach(net.module)  # broadcast rank 0's weights, average gradients from now on
        torch.manual_seed(args.seed + rank)  # each rank samples its own actions and minibatches
        console.message(f"data-parallel: {dist_ctx.world_size} ranks (this is rank 0), {args.num_envs} envs "
                        f"and {args.train_timesteps or 'default'} env steps per rank")
    if dist_ctx is None or dist_ctx.is_main:
        try:  # a read-only or impossible run dir is a one-line error before any training
            run_dir.mkdir(parents=True, exist_ok=True)
            probe = run_dir / ".write_test"
            probe.write_bytes(b"")
            probe.unlink()
            if getattr(args, "start_safe_tmp", None):  # the config this run started on, where its start event names it
                args.config = str(shutil.copyfile(args.start_safe_tmp, run_dir / START_SAFE_CONFIG))
        except OSError as exc:
            raise InputError(f"cannot write the run directory ({exc.strerror or exc})", path=str(run_dir),
                             hint="pass a writable --run_dir") from None
    agent = PPOAgent(net)
    if dist_ctx is None or dist_ctx.is_main:
        try:  # a full disk: TensorBoard's first write (a traceback, exit 1, until session 19)
            logger = RunLogger(run_dir, use_tensorboard=args.use_tensorboard or args.watchdog)
        except OSError as exc:
            raise InputError(f"cannot write the run directory ({exc.strerror or exc})", path=str(run_dir),
                             hint="free space on its disk, or pass a --run_dir on another") from None
    else:
        logger = ows_dist.NullLogger()
    watchdog = Watchdog(wd_cfg) if wd_cfg is not None else None
    if watchdog is not None and (loaded is not None or os.environ.get(RESTART_ENV)):
        # (a restart from scratch, no usable checkpoint, is a recovery of the run too: it was left out of the
        # budget and the lr escalation until session 17)
        abandoned = _resume_watchdog(watchdog, loaded, run_dir, start_iteration,
                                     writes=dist_ctx is None or dist_ctx.is_main)
        if abandoned:
            console.message(f"watchdog: resumed at iteration {start_iteration}: {len(abandoned)} stable checkpoint(s) "
                            f"after it, of the run this resume abandons, are stable no more ({', '.join(abandoned)})",
                            style="yellow")
    session = WatchSession(watchdog=watchdog, run_dir=run_dir, logger=logger, safe=safe,
                           safe_name=Path(args.safe_config).name, console=console, faults=faults,
                           seed=args.seed + rank, save_interval_steps=args.save_interval, dist=dist_ctx,
                           start_iteration=start_iteration,
                           run_values={k: getattr(cfg, k) for k in STARTUP_PPO_KEYS if hasattr(cfg, k)},
                           resources=ResourceSampler(device) if watchdog is not None else None)
    if watchdog is not None:  # a resumed run: its recoveries so far are the earlier processes' (the status line counts
        session.result.rollbacks = session.result.recoveries_before = watchdog.policy.rollbacks  # this one's)
    ppo = effective_ppo_values(net.module, cfg)
    console.message(f"training {args.algo} on {args.task}: {iterations:,} iterations of "
                    f"{args.num_envs} envs x {episode_length} steps ({total:,} env steps), device {device}, "
                    f"run dir {run_dir}; " + ", ".join(f"{k} {v}" for k, v in ppo.items()), style="bold")
    if watchdog is not None:
        watchdog.start(run_dir=str(run_dir), task=args.task, argv=args.argv, ppo=ppo, config_file=args.config,
                       resumed_from=str(checkpoint) if checkpoint else None, episode_length=episode_length,
                       num_envs=args.num_envs)
    driver_holder: dict = {}
    driver_cls = make_driver_class(session)

    class _Capture(driver_cls):  # keep a handle on the driver for the final module.pt
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            driver_holder["driver"] = self

    start = time.time()
    for fault in faults.after(iterations):  # (accepted silently until session 17)
        console.message(f"inject: {fault.spec} starts after this run's last iteration ({iterations - 1}): it will "
                        "not happen", style="bold yellow")
    for fault, partly in faults.before(start_iteration):  # a resumed run (silent until session 28)
        console.message(f"inject: {fault.spec} starts before this run's first iteration ({start_iteration}, resumed "
                        "from its checkpoint): " + (f"only its iterations from {start_iteration} on happen" if partly
                                                     else "it will not happen"), style="bold yellow")
    console.begin(iterations, start_iteration=start_iteration)
    ended = "finished"
    try:
        agent.train(total_time_steps=total, logger=logger, driver_class=_Capture)
        if ("driver" in driver_holder and session.result.env_steps and not session.result.stopped
                and session.writes_files):
            session.save_module(driver_holder["driver"], session.result.env_steps)  # the final weights
        if dist_ctx is not None:
            dist_ctx.write_summary(run_dir, session.result, net.module)
    except KeyboardInterrupt:
        ended = "interrupted"
        raise
    except BaseException as exc:
        ended = f"crashed: {type(exc).__name__}: {str(exc)[:200]}"
        raise
    finally:
        session.close(ended="stopped" if session.result.stopped and ended == "finished" else ended)
        console.close()
        logger.close()
        env.close()
        if dist_ctx is not None:
            dist_ctx.detach()
    if dist_ctx is not None:
        from watchdog.distributed import destroy_process_group

        destroy_process_group()  # only after a clean finish: a failing rank exits without it
    _report(console, session, time.time() - start, run_dir, args.argv, start_iteration,
            start_iteration * episode_length * args.num_envs)
    last = session.result.final_record
    if last is not None and last.nonfinite_keys() and not session.result.stopped:
        # nothing crashed (e.g. distribution checks off) and nothing rolled back: not a finished run
        raise NonFiniteTraining(f"the last iteration's {', '.join(last.nonfinite_keys())} "
                                f"{'is' if len(last.nonfinite_keys()) == 1 else 'are'} non-finite")
    return EXIT_STOPPED if session.result.stopped else EXIT_OK


def effective_ppo_values(module, cfg) -> dict:
    """The learning rates the optimizers really hold and the clipping the trainer will use."""
    from openrl_ws.live_config import learning_rates

    out: dict = learning_rates(module)
    out["max_grad_norm"] = cfg.max_grad_norm if cfg.use_max_grad_norm else None
    return out


def _resume_watchdog(watchdog, loaded: dict | None, run_dir: Path, start_iteration: int, *, writes: bool) -> list[str]:
    """Continue the watchdog of the run the checkpoint (if any) came from: its detectors, policy and
    registry when the checkpoint carries them (ours do), and one budget for the run's recoveries
    (rollbacks in any process plus `watchdog run` restarts, counted in the run's event log). The stable
    checkpoints on disk after the resume point belong to the trajectory this resume abandons: they are marked
    unstable (``writes``: by rank 0 only); returns their tags."""
    from watchdog.policy import CheckpointRef
    from watchdog.session import abandon_after_resume
    from watchdog.supervise import recoveries_so_far

    meta = (loaded or {}).get("meta") or {}
    ref = None
    if loaded is not None and loaded["kind"] == "watchdog" and isinstance(meta.get("watchdog"), dict):
        watchdog.load_state_dict(meta["watchdog"])
        watchdog.policy.registry.retain(lambda r: r.path is not None and Path(r.path).is_dir())
        ref = CheckpointRef(str(meta.get("tag") or Path(loaded["path"]).name), int(meta["iteration"]),
                            int(meta["env_steps"]), str(loaded["path"]))
    watchdog.resumed(ref, start_iteration, recoveries=recoveries_so_far(run_dir))
    # (not where the count starts at 0 again: a restart from scratch, or a checkpoint of another iteration size,
    # whose numbers are not this run's)
    if not (writes and start_iteration):
        return []
    return abandon_after_resume(run_dir / "checkpoints" / "watchdog", start_iteration - 1)


def _merged_safe_config(path: str | None) -> bool:
    """A config ``write_safe_config`` wrote (``watchdog run``'s restart config, ``--start_safe``'s): its first line."""
    if not path:
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.readline().startswith("# written by ")
    except OSError:
        return False


def _safe_over_flags(openrl_argv: list[str], safe_config: str, console) -> list[str]:
    """The safe config's hyper-parameters win over the same keys given as OpenRL flags (``--lr 5e-3``): OpenRL reads
    flags after ``--config``, so a restart or ``--start_safe`` would train at the rates that diverged. A learning rate
    flag lower than the safe one stays, as ``config.safe_lr`` keeps the run's own."""
    from watchdog.config import OPENRL_DEFAULT_LRS, STARTUP_PPO_KEYS, read_yaml, safe_lr
    from watchdog.supervise import drop_flag, get_flag

    safe = read_yaml(safe_config)
    if not isinstance(safe, dict):
        return openrl_argv
    out = list(openrl_argv)
    for key, value in safe.items():
        if key in STARTUP_PPO_KEYS or value is None:
            continue
        given = get_flag(out, f"--{key}")
        if given is None:
            continue
        out = drop_flag(out, f"--{key}")
        if key in OPENRL_DEFAULT_LRS:
            try:
                if float(given) <= safe_lr(float(value), float(given)):
                    out += [f"--{key}", given]
                    continue
            except (TypeError, ValueError):
                pass  # OpenRL's parser says what is wrong with it
        console.message(f"train.py: --{key} {given} on the command line gives way to the safe config's {key}: "
                        f"{value} ({safe_config})", style="yellow")
    return out


def _resume_iteration(loaded: dict, checkpoint: Path, steps_per_iteration: int) -> int:
    """The iteration after the checkpoint's, when its env steps fit this run's iteration size.

    Our checkpoints record their env steps; OpenRL's are named ``rl_model_<steps>_steps``. A
    checkpoint from a run with another iteration size starts counting at 0 again (MAPush's way).
    """
    from watchdog.checkpoints import openrl_checkpoint_steps

    steps = (loaded.get("meta") or {}).get("env_steps")
    if steps is None:
        steps = openrl_checkpoint_steps(checkpoint)
    if not steps or steps % steps_per_iteration:
        return 0
    return steps // steps_per_iteration


def _report(console, session, seconds: float, run_dir: Path, argv: list[str] | None = None, first_iteration: int = 0,
            env_steps_before: int = 0) -> None:
    """The closing summary: what was trained (by this process, from ``first_iteration`` on, after
    ``env_steps_before`` of a resumed run), what the watchdog did, where the files are."""
    from watchdog.console import RunSummary
    from watchdog.eventlog import EVENTS_FILENAME

    res = session.result
    last = res.final_record
    files = [("run dir", str(run_dir))]
    for label, path in (("event log", run_dir / EVENTS_FILENAME), ("OpenRL log", run_dir / "log.txt"),
                        ("TensorBoard", run_dir / "logs"), ("stable checkpoints", run_dir / "checkpoints" / "watchdog")):
        if path.exists():
            files.append((label, str(path)))
    modules = sorted(run_dir.glob("checkpoints/rl_model_*_steps/module.pt"), key=lambda p: p.stat().st_mtime)
    if modules:
        files.append(("OpenRL module.pt", str(modules[-1]) + (f" (newest of {len(modules)})" if len(modules) > 1 else "")))
    console.finish(RunSummary(
        verdict=f"STOPPED by the watchdog: {res.stop_reason}" if res.stopped else "finished", ok=not res.stopped,
        iterations=res.iterations, env_steps=res.env_steps, seconds=seconds,
        final_reward=last.metrics.get("rollout/average_step_reward") if last else None,
        metrics_finite=last is None or all(v == v for v in last.metrics.values()), files=files,
        first_iteration=first_iteration, env_steps_before=env_steps_before, recoveries_before=res.recoveries_before))
    if res.restartable and argv is not None:
        console.message(f"resume with: {resume_command(argv, res.resume_checkpoint, run_dir)} (or run it under "
                        "`watchdog run --`, "
                        "which restarts it by itself)", style="bold")
    elif res.stopped:  # (a stop said nothing of the way on until session 18)
        console.message(f"to go on: `watchdog replay {run_dir}` names the stable checkpoint before the onset and the "
                        "command that resumes from it on the safe config; lower the learning rates further, or find "
                        "what the run met there", style="bold")


def _resume_after_interrupt(args) -> str:
    """'; resume with: ...' from the newest verified stable checkpoint of a watched run (Ctrl-C said nothing of the
    way back until session 18), else ''."""
    run_dir = getattr(args, "run_dir_used", None)
    if not args.watchdog or run_dir is None:
        return ""
    from watchdog.supervise import choose_restart_point, set_flag

    point = choose_restart_point(run_dir)
    if point.kind != "stable":
        return ""
    return f"; resume with: {resume_command(set_flag(args.argv, '--run_dir', str(run_dir)), str(point.path), run_dir)}"


def resume_command(argv: list[str], checkpoint: str | None, run_dir: Path | None = None) -> str:
    """This command line without its ``--inject`` faults, continuing from ``checkpoint`` (None: the supervisor's
    choice, the newest stable), with ``--start_safe`` when the run in ``run_dir`` had switched to its safe config (a
    rollback or a restart: the resumed process went back to the config that had diverged until session 18)."""
    import shlex

    from watchdog.supervise import on_safe_config, resume_argv, run_events

    args = resume_argv(argv, checkpoint or None, start_safe=run_dir is not None and on_safe_config(run_events(run_dir)))
    script = "openrl_ws/train.py" if Path.cwd().resolve() == ROOT else str(Path(__file__).resolve())
    return shlex.join(["python", script, *args])


if __name__ == "__main__":
    sys.exit(main())
