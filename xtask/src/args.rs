//! A tiny command-line parser: flags, `--name value` / `--name=value` options, positionals,
//! and everything after `--` passed through untouched.

use crate::Result;

/// The not-yet-consumed arguments of one subcommand.
#[derive(Debug)]
pub struct Args {
    items: Vec<String>,
    passthrough: Vec<String>,
}

impl Args {
    /// Splits `raw` at the first `--`; what follows it is kept for [`Args::passthrough`].
    pub fn new(raw: &[String]) -> Args {
        let split = raw.iter().position(|a| a == "--").unwrap_or(raw.len());
        Args {
            items: raw[..split].to_vec(),
            passthrough: raw.get(split + 1..).unwrap_or_default().to_vec(),
        }
    }

    /// Whether the flag `name` (e.g. `--release`) was given; consumes every occurrence.
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.items.len();
        self.items.retain(|a| a != name);
        self.items.len() != before
    }

    /// Every value of the option `name`, in order; consumes them.
    pub fn values(&mut self, name: &str) -> Result<Vec<String>> {
        let prefix = format!("{name}=");
        let mut found = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            if self.items[i] == name {
                if i + 1 >= self.items.len() || self.items[i + 1].starts_with("--") {
                    return Err(format!("option {name} needs a value"));
                }
                found.push(self.items.remove(i + 1));
                self.items.remove(i);
            } else if let Some(v) = self.items[i].strip_prefix(&prefix) {
                found.push(v.to_string());
                self.items.remove(i);
            } else {
                i += 1;
            }
        }
        Ok(found)
    }

    /// The value of the option `name`, which may be given at most once.
    pub fn value(&mut self, name: &str) -> Result<Option<String>> {
        let mut all = self.values(name)?;
        match all.len() {
            0 | 1 => Ok(all.pop()),
            n => Err(format!("option {name} given {n} times; give it once")),
        }
    }

    /// The arguments after `--`.
    pub fn passthrough(&self) -> &[String] {
        &self.passthrough
    }

    /// The remaining positional arguments; an unconsumed `--option` is an error.
    pub fn positionals(self) -> Result<Vec<String>> {
        match self.items.iter().find(|a| a.starts_with('-')) {
            Some(unknown) => Err(format!("unknown option {unknown:?}")),
            None => Ok(self.items),
        }
    }

    /// Fails if anything but consumed options is left.
    pub fn finish(self) -> Result {
        let rest = self.positionals()?;
        match rest.first() {
            Some(extra) => Err(format!("unexpected argument {extra:?}")),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        let owned: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        Args::new(&owned)
    }

    #[test]
    fn options_flags_and_positionals_are_separated() {
        let mut a = args(&[
            "x",
            "--cpu",
            "max",
            "--release",
            "--cpu=neoverse-n1",
            "y",
            "--",
            "--z",
        ]);
        assert!(a.flag("--release"));
        assert!(!a.flag("--quick"));
        assert_eq!(a.values("--cpu").unwrap(), ["max", "neoverse-n1"]);
        assert_eq!(a.passthrough(), ["--z"]);
        assert_eq!(a.positionals().unwrap(), ["x", "y"]);
    }

    #[test]
    fn missing_value_and_unknown_option_are_errors() {
        let mut a = args(&["--python"]);
        assert!(a.value("--python").unwrap_err().contains("--python"));
        let a = args(&["--bogus"]);
        assert!(a.finish().unwrap_err().contains("--bogus"));
        let mut a = args(&["--python", "a", "--python", "b"]);
        assert!(a.value("--python").unwrap_err().contains("2 times"));
    }

    #[test]
    fn leftover_positional_fails_finish() {
        assert!(args(&["extra"]).finish().unwrap_err().contains("extra"));
        assert!(args(&[]).finish().is_ok());
    }
}
