//! IDs as the store interface takes them: naming the kind of each ID keeps two
//! of them from being passed in each other's place.

use std::fmt;

macro_rules! id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name<'a>(pub &'a str);

        impl<'a> $name<'a> {
            /// The ID's text.
            pub fn as_str(&self) -> &'a str {
                self.0
            }
        }

        impl fmt::Display for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.0)
            }
        }
    };
}

id!(
    /// A user's ID.
    UserId
);
id!(
    /// A device's ID.
    DeviceId
);
id!(
    /// An app's OAuth client ID.
    AppId
);
id!(
    /// A token family's ID (an access token's `sid`).
    FamilyId
);
id!(
    /// An enrollment key's ID.
    EnrollmentKeyId
);
id!(
    /// Who acted, for the audit log: a user's ID, or the name of a tool such as `admin-cli`.
    Actor
);
