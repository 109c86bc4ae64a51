//! Text from the sandbox made safe to print on the maintainer's terminal: keepout-launch's
//! [`keepout_launch::shown`], which the lines of a run's report use too.

pub use keepout_launch::shown::path;
