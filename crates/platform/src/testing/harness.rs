//! The harness of the tests that need more than their own code (`harness = false` targets,
//! on `libtest-mimic`): each test is a [`Case`] with what it needs from the machine
//! ([`Need`]): the real servers, a program. A case whose needs are missing is listed as
//! ignored, so nextest and cargo test report it as skipped, never as passed; under a truthy
//! `CI` it is listed like the others and fails, saying what is missing.
//!
//! Cases are declared with [`backend_tests!`](crate::backend_tests), one call per module,
//! which defines the module's `CASES`; the target's `main` hands every module's `CASES` to
//! [`run`].

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::process::ExitCode;

use libtest_mimic::{Arguments, Failed, Trial};

use super::{BackendSet, ci};

/// What an asynchronous case runs.
pub type TestFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Something a test needs besides its own code.
#[derive(Debug, Clone, Copy)]
pub struct Need {
    /// Names it; each need is probed once per process.
    pub name: &'static str,
    /// Why it is missing, or `None` when it is there.
    pub missing: fn() -> Option<String>,
}

/// PostgreSQL, RabbitMQ and Redis, where `HERALD_TEST_*_URL` say.
pub const REAL_SERVERS: Need = Need {
    name: "the real servers",
    missing: super::servers_missing,
};

/// A Kafka broker, where `HERALD_TEST_KAFKA_BROKERS` says.
pub const KAFKA: Need = Need {
    name: "a Kafka broker",
    missing: super::kafka_missing,
};

#[derive(Debug, Clone, Copy)]
enum Body {
    Blocking(fn()),
    Async(fn() -> TestFuture),
}

/// One test: a name, what it runs, on which runtime, and what it needs.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// `module_path!()` and the test's name; the crate's name is left out of the test's.
    path: &'static str,
    body: Body,
    /// Tokio worker threads; 0 runs the test on the current thread.
    threads: usize,
    real_servers: bool,
    kafka: bool,
    needs: &'static [Need],
    /// Why it runs only when asked (`--ignored`), as `#[ignore = "…"]` says.
    ignored: Option<&'static str>,
}

impl Case {
    /// A plain test.
    pub const fn blocking(path: &'static str, body: fn()) -> Case {
        Case {
            path,
            body: Body::Blocking(body),
            threads: 0,
            real_servers: false,
            kafka: false,
            needs: &[],
            ignored: None,
        }
    }

    /// An asynchronous test on `set` (if any): on [`BackendSet::Real`] it needs the real
    /// servers, on [`BackendSet::Kafka`] those and a Kafka broker.
    pub const fn on(set: Option<BackendSet>, path: &'static str, body: fn() -> TestFuture) -> Case {
        Case {
            path,
            body: Body::Async(body),
            threads: 0,
            real_servers: matches!(set, Some(BackendSet::Real | BackendSet::Kafka)),
            kafka: matches!(set, Some(BackendSet::Kafka)),
            needs: &[],
            ignored: None,
        }
    }

    /// Runs on a multi-threaded runtime with `threads` workers (0: the current thread).
    pub const fn threads(mut self, threads: usize) -> Case {
        self.threads = threads;
        self
    }

    /// Needs `needs` besides the real servers (if it runs on them).
    pub const fn needs(mut self, needs: &'static [Need]) -> Case {
        self.needs = needs;
        self
    }

    /// Runs only when asked (`--ignored`), for the reason given: a measurement, say.
    pub const fn ignore(mut self, reason: &'static str) -> Case {
        self.ignored = Some(reason);
        self
    }

    /// The test's name: its path without the crate's name.
    pub fn name(&self) -> &'static str {
        self.path
            .split_once("::")
            .map_or(self.path, |(_, name)| name)
    }

    fn all_needs(&self) -> impl Iterator<Item = &Need> {
        self.real_servers
            .then_some(&REAL_SERVERS)
            .into_iter()
            .chain(self.kafka.then_some(&KAFKA))
            .chain(self.needs)
    }

    fn run(&self, missing: &[String]) -> Result<(), Failed> {
        if !missing.is_empty() {
            let missing = missing.join("; ");
            return Err(match ci() {
                Some(ci) => format!("CI={ci}, but {missing}: in CI every test must run"),
                None => format!("cannot run: {missing}"),
            }
            .into());
        }
        match self.body {
            Body::Blocking(body) => body(),
            Body::Async(body) => {
                let mut runtime = match self.threads {
                    0 => tokio::runtime::Builder::new_current_thread(),
                    threads => {
                        let mut builder = tokio::runtime::Builder::new_multi_thread();
                        builder.worker_threads(threads);
                        builder
                    }
                };
                let runtime = runtime.enable_all().build().map_err(|e| e.to_string())?;
                runtime.block_on(body());
            }
        }
        Ok(())
    }
}

/// Lists or runs `modules`' cases as libtest would, with the command line's arguments.
pub fn run(modules: &[&'static [Case]]) -> ExitCode {
    let args = Arguments::from_args();
    let in_ci = ci().is_some();
    let mut probed: HashMap<&'static str, Option<String>> = HashMap::new();
    let mut skipped = Vec::new();
    let trials = modules
        .iter()
        .flat_map(|cases| cases.iter())
        .map(|case| {
            let name = case.name();
            // Only the cases the arguments select are probed: nextest runs each test in a
            // process of its own.
            let selected =
                !args.is_filtered_out(&Trial::test(name, || Ok(())).with_ignored_flag(true));
            let missing: Vec<String> = if selected {
                case.all_needs()
                    .filter_map(|need| probed.entry(need.name).or_insert_with(need.missing).clone())
                    .collect()
            } else {
                Vec::new()
            };
            let unable = !missing.is_empty() && !in_ci;
            if unable {
                skipped.push(missing.join("; "));
            }
            let ignored = unable || case.ignored.is_some();
            Trial::test(name, move || case.run(&missing)).with_ignored_flag(ignored)
        })
        .collect();
    if !args.list && !skipped.is_empty() {
        skipped.sort();
        skipped.dedup();
        eprintln!(
            "skipping the tests that need what is missing here: {}",
            skipped.join("; ")
        );
    }
    libtest_mimic::run(&args, trials).exit_code()
}

/// RabbitMQ's control program, to restart the broker or drop its connections.
pub const RABBITMQCTL: Need = Need {
    name: "rabbitmqctl",
    missing: || program_missing("rabbitmqctl"),
};

/// Why `program` cannot run here (not on `PATH`), or `None`.
pub fn program_missing(program: &str) -> Option<String> {
    let found = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| is_executable(&dir.join(program)))
    });
    (!found).then(|| format!("{program} is not installed"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Declares a module's tests as its `CASES`, for [`run`]; one call per module.
///
/// `backend_tests!(a, b)` runs `async fn a(set: BackendSet)` twice, as `a::embedded` and
/// `a::real` (which needs the real servers). Sections after a `;` declare the tests that run
/// otherwise: `every bus: f` runs `async fn f(set: BackendSet)` three times, as `f::embedded`,
/// `f::real` and `f::kafka` (the real servers with Kafka as the bus), for what depends on the
/// bus; `real only: c` runs `async fn c()` on the real servers, `no backend: d` runs
/// `async fn d()`, `blocking: e` runs `fn e()`. Each test may say more after its name:
/// `a(threads = 4, needs = &[NODE], ignore = "why")`. Tests run on the current thread
/// unless told otherwise.
#[macro_export]
macro_rules! backend_tests {
    ($($tests:tt)*) => {
        $crate::__test_cases!(threads = 0; $($tests)*);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __test_cases {
    (threads = $threads:literal; every bus: $($rest:tt)*) => {
        $crate::__test_cases!(@split $threads; []; []; []; []; []; every bus: $($rest)*);
    };
    (threads = $threads:literal; real only: $($rest:tt)*) => {
        $crate::__test_cases!(@split $threads; []; []; []; []; []; real only: $($rest)*);
    };
    (threads = $threads:literal; no backend: $($rest:tt)*) => {
        $crate::__test_cases!(@split $threads; []; []; []; []; []; no backend: $($rest)*);
    };
    (threads = $threads:literal; blocking: $($rest:tt)*) => {
        $crate::__test_cases!(@split $threads; []; []; []; []; []; blocking: $($rest)*);
    };
    (threads = $threads:literal; $($rest:tt)*) => {
        $crate::__test_cases!(@split $threads; []; []; []; []; []; both: $($rest)*);
    };
    // Sorts the tests into five lists, one section at a time.
    (@split $threads:literal; [$($both:tt)*]; [$($every:tt)*]; [$($real:tt)*]; [$($none:tt)*]; [$($blocking:tt)*];
        both: $($name:ident $(($($opts:tt)*))?),+ $(,)? $(; $($rest:tt)*)?) => {
        $crate::__test_cases!(@split $threads;
            [$($both)* $($name [$($($opts)*)?])+]; [$($every)*]; [$($real)*]; [$($none)*]; [$($blocking)*];
            $($($rest)*)?);
    };
    (@split $threads:literal; [$($both:tt)*]; [$($every:tt)*]; [$($real:tt)*]; [$($none:tt)*]; [$($blocking:tt)*];
        every bus: $($name:ident $(($($opts:tt)*))?),+ $(,)? $(; $($rest:tt)*)?) => {
        $crate::__test_cases!(@split $threads;
            [$($both)*]; [$($every)* $($name [$($($opts)*)?])+]; [$($real)*]; [$($none)*]; [$($blocking)*];
            $($($rest)*)?);
    };
    (@split $threads:literal; [$($both:tt)*]; [$($every:tt)*]; [$($real:tt)*]; [$($none:tt)*]; [$($blocking:tt)*];
        real only: $($name:ident $(($($opts:tt)*))?),+ $(,)? $(; $($rest:tt)*)?) => {
        $crate::__test_cases!(@split $threads;
            [$($both)*]; [$($every)*]; [$($real)* $($name [$($($opts)*)?])+]; [$($none)*]; [$($blocking)*];
            $($($rest)*)?);
    };
    (@split $threads:literal; [$($both:tt)*]; [$($every:tt)*]; [$($real:tt)*]; [$($none:tt)*]; [$($blocking:tt)*];
        no backend: $($name:ident $(($($opts:tt)*))?),+ $(,)? $(; $($rest:tt)*)?) => {
        $crate::__test_cases!(@split $threads;
            [$($both)*]; [$($every)*]; [$($real)*]; [$($none)* $($name [$($($opts)*)?])+]; [$($blocking)*];
            $($($rest)*)?);
    };
    (@split $threads:literal; [$($both:tt)*]; [$($every:tt)*]; [$($real:tt)*]; [$($none:tt)*]; [$($blocking:tt)*];
        blocking: $($name:ident $(($($opts:tt)*))?),+ $(,)? $(; $($rest:tt)*)?) => {
        $crate::__test_cases!(@split $threads;
            [$($both)*]; [$($every)*]; [$($real)*]; [$($none)*]; [$($blocking)* $($name [$($($opts)*)?])+];
            $($($rest)*)?);
    };
    (@split $threads:literal;
        [$($both:ident [$($both_opts:tt)*])*];
        [$($every:ident [$($every_opts:tt)*])*];
        [$($real:ident [$($real_opts:tt)*])*];
        [$($none:ident [$($none_opts:tt)*])*];
        [$($blocking:ident [$($blocking_opts:tt)*])*];) => {
        $(
            mod $both {
                pub(super) fn embedded() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$both($crate::testing::BackendSet::Embedded))
                }

                pub(super) fn real() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$both($crate::testing::BackendSet::Real))
                }
            }
        )*
        $(
            mod $every {
                pub(super) fn embedded() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$every($crate::testing::BackendSet::Embedded))
                }

                pub(super) fn real() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$every($crate::testing::BackendSet::Real))
                }

                pub(super) fn kafka() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$every($crate::testing::BackendSet::Kafka))
                }
            }
        )*
        $(
            mod $real {
                pub(super) fn run() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$real())
                }
            }
        )*
        $(
            mod $none {
                pub(super) fn run() -> $crate::testing::harness::TestFuture {
                    ::std::boxed::Box::pin(super::$none())
                }
            }
        )*

        pub(crate) const CASES: &[$crate::testing::harness::Case] = &[
            $(
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        Some($crate::testing::BackendSet::Embedded),
                        concat!(module_path!(), "::", stringify!($both), "::embedded"),
                        $both::embedded,
                    )
                    .threads($threads),
                    $($both_opts)*
                ),
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        Some($crate::testing::BackendSet::Real),
                        concat!(module_path!(), "::", stringify!($both), "::real"),
                        $both::real,
                    )
                    .threads($threads),
                    $($both_opts)*
                ),
            )*
            $(
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        Some($crate::testing::BackendSet::Embedded),
                        concat!(module_path!(), "::", stringify!($every), "::embedded"),
                        $every::embedded,
                    )
                    .threads($threads),
                    $($every_opts)*
                ),
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        Some($crate::testing::BackendSet::Real),
                        concat!(module_path!(), "::", stringify!($every), "::real"),
                        $every::real,
                    )
                    .threads($threads),
                    $($every_opts)*
                ),
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        Some($crate::testing::BackendSet::Kafka),
                        concat!(module_path!(), "::", stringify!($every), "::kafka"),
                        $every::kafka,
                    )
                    .threads($threads),
                    $($every_opts)*
                ),
            )*
            $(
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        Some($crate::testing::BackendSet::Real),
                        concat!(module_path!(), "::", stringify!($real)),
                        $real::run,
                    )
                    .threads($threads),
                    $($real_opts)*
                ),
            )*
            $(
                $crate::__case_options!(
                    $crate::testing::harness::Case::on(
                        None,
                        concat!(module_path!(), "::", stringify!($none)),
                        $none::run,
                    )
                    .threads($threads),
                    $($none_opts)*
                ),
            )*
            $(
                $crate::__case_options!(
                    $crate::testing::harness::Case::blocking(
                        concat!(module_path!(), "::", stringify!($blocking)),
                        $blocking,
                    ),
                    $($blocking_opts)*
                ),
            )*
        ];
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __case_options {
    ($case:expr, $($option:ident = $value:expr),* $(,)?) => {
        $case $(.$option($value))*
    };
}
