//! Enums chosen by name (on the command line, in files): each lists its values with their names
//! and a line of description, so that the command line can offer them without the library
//! depending on the command-line parser.

/// An enum whose values have names: `ALL` lists (value, name, description) in the order they are
/// offered.
pub trait Choice: Copy + PartialEq + Send + Sync + 'static {
    const ALL: &'static [(Self, &'static str, &'static str)];

    /// The value's name.
    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(value, _, _)| *value == self)
            .map_or("?", |(_, name, _)| name)
    }

    /// The value of a name.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .find(|(_, n, _)| *n == name)
            .map(|(value, _, _)| *value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq)]
    enum Two {
        A,
        B,
    }

    impl Choice for Two {
        const ALL: &'static [(Two, &'static str, &'static str)] =
            &[(Two::A, "a", "the first"), (Two::B, "b", "the second")];
    }

    #[test]
    fn names_round_trip() {
        for (value, name, _) in Two::ALL {
            assert_eq!(value.name(), *name);
            assert_eq!(Two::from_name(name), Some(*value));
        }
        assert_eq!(Two::from_name("c"), None);
    }
}
