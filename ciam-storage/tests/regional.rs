//! Data residency: the conformance kit passes through `RegionalBackend`, each account's rows
//! land only in its region's database (two real SQLite files), identifiers stay unique across
//! regions through the directory (in memory and in a real PostgreSQL), and a process refuses
//! accounts of other regions unless allowed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use ciam_core::credential::{Credential, CredentialKind};
use ciam_core::id::{CredentialId, UserId};
use ciam_core::identifier::Email;
use ciam_core::rng::SystemRandom;
use ciam_core::store::{CredentialStore, IdentityStore, StoreError};
use ciam_core::user::{Region, User};
use ciam_storage::conformance;
use ciam_storage::memory::MemoryBackend;
use ciam_storage::regional::{
    CrossRegion, CrossRegionRefused, DirectoryHasher, MemoryDirectory, PostgresDirectory,
    RegionDirectory, RegionalBackend,
};
use ciam_storage::sqlite::SqliteBackend;
use sqlx::Row;
use time::OffsetDateTime;

const SECRET: &[u8] = b"directory key for the residency tests";

fn eu() -> Region {
    Region::new("eu").unwrap()
}

fn us() -> Region {
    Region::new("us").unwrap()
}

/// The region the conformance kit's one pinned account names.
fn kit_region() -> Region {
    Region::new("eu-west").unwrap()
}

fn regional_memory(home: Region, cross_region: CrossRegion) -> RegionalBackend {
    RegionalBackend::new(
        home,
        Arc::new(MemoryDirectory::new()),
        DirectoryHasher::new(SECRET),
    )
    .region(kit_region(), Arc::new(MemoryBackend::new()))
    .region(us(), Arc::new(MemoryBackend::new()))
    .allow_cross_region(cross_region)
}

/// The whole kit through a regional backend serving the region its accounts live in: the
/// routing keeps every rule of the store traits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_kit_passes_through_the_regional_backend() {
    conformance::run_all(|| async { regional_memory(kit_region(), CrossRegion::Refuse) }).await;
}

/// The kit again from a process of another region with cross-region access allowed: the
/// kit's pinned account lives in a region that is not this process's, and lookups by secret
/// search every region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_conformance_kit_passes_across_regions_when_allowed() {
    conformance::run_all(|| async { regional_memory(us(), CrossRegion::Allow) }).await;
}

fn user(address: &str, region: Option<Region>) -> User {
    let mut u = User::new(
        UserId::generate(&SystemRandom::new()).unwrap(),
        OffsetDateTime::now_utc(),
    );
    u.email = Some(Email::parse(address).unwrap());
    u.region = region;
    u
}

fn password(user: UserId) -> Credential {
    Credential::new(
        CredentialId::generate(&SystemRandom::new()).unwrap(),
        user,
        CredentialKind::Password,
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA".to_owned(),
        OffsetDateTime::now_utc(),
    )
}

/// Every text and blob of every table of a SQLite database, as one string.
async fn dump(path: &std::path::Path) -> String {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut out = String::new();
    for t in tables {
        let rows = sqlx::query(&format!("SELECT * FROM \"{t}\""))
            .fetch_all(&pool)
            .await
            .unwrap();
        for row in rows {
            for i in 0..row.len() {
                if let Ok(Some(s)) = row.try_get::<Option<String>, _>(i) {
                    out.push_str(&s);
                } else if let Ok(Some(b)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                    out.push_str(&String::from_utf8_lossy(&b));
                }
                out.push('|');
            }
        }
    }
    pool.close().await;
    out
}

struct TwoRegions {
    dir: tempfile::TempDir,
    eu: Arc<SqliteBackend>,
    us: Arc<SqliteBackend>,
}

impl TwoRegions {
    async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            let url = format!("sqlite://{}?mode=rwc", dir.path().join(name).display());
            async move { Arc::new(SqliteBackend::connect(&url).await.unwrap()) }
        };
        let eu = open("eu.db").await;
        let us = open("us.db").await;
        Self { dir, eu, us }
    }

    /// A process serving `home` over both databases and `directory`.
    fn process(&self, home: Region, directory: Arc<dyn RegionDirectory>) -> RegionalBackend {
        RegionalBackend::new(home, directory, DirectoryHasher::new(SECRET))
            .region(eu(), Arc::clone(&self.eu))
            .region(us(), Arc::clone(&self.us))
    }
}

fn refused(e: &StoreError) -> Option<&CrossRegionRefused> {
    match e {
        StoreError::Other(source) => source.downcast_ref::<CrossRegionRefused>(),
        _ => None,
    }
}

/// The scenario, on any directory: accounts land in their region only; identifiers are
/// unique across regions; other regions' accounts are refused unless allowed; deletion frees
/// the address everywhere.
async fn residency(directory: Arc<dyn RegionDirectory>) {
    let dbs = TwoRegions::new().await;
    let paris = dbs.process(eu(), Arc::clone(&directory));
    let boston = dbs.process(us(), Arc::clone(&directory));

    // Pinned by the serving region (no region on the record) and explicitly.
    let anne = user("anne@example.eu", None);
    paris
        .create_user(&anne, &[password(anne.id)])
        .await
        .unwrap();
    let bob = user("bob@example.us", Some(us()));
    boston.create_user(&bob, &[password(bob.id)]).await.unwrap();
    assert_eq!(directory.region_of(anne.id).await.unwrap(), Some(eu()));
    assert_eq!(directory.region_of(bob.id).await.unwrap(), Some(us()));

    // Each database holds its own account and no trace of the other's.
    let (eu_dump, us_dump) = (
        dump(&dbs.dir.path().join("eu.db")).await,
        dump(&dbs.dir.path().join("us.db")).await,
    );
    assert!(eu_dump.contains("anne@example.eu") && !eu_dump.contains("bob@example.us"));
    assert!(us_dump.contains("bob@example.us") && !us_dump.contains("anne@example.eu"));

    // Any process can tell where an address lives, to route the request there.
    assert_eq!(
        paris
            .region_for_email(&Email::parse("bob@example.us").unwrap())
            .await
            .unwrap(),
        Some(us())
    );
    assert_eq!(
        paris
            .region_for_email(&Email::parse("nobody@example.us").unwrap())
            .await
            .unwrap(),
        None
    );

    // Found from their own region, by id and by address.
    let found = paris
        .user_by_email(&Email::parse("ANNE@example.eu").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, anne.id);
    assert_eq!(boston.user_by_id(bob.id).await.unwrap().unwrap().id, bob.id);

    // Refused from the other region: reads and writes, by id and by address.
    let e = paris.user_by_id(bob.id).await.unwrap_err();
    assert_eq!(
        refused(&e),
        Some(&CrossRegionRefused {
            home: eu(),
            region: us()
        }),
        "{e:?}"
    );
    let e = paris
        .user_by_email(&Email::parse("bob@example.us").unwrap())
        .await
        .unwrap_err();
    assert!(refused(&e).is_some(), "{e:?}");
    let e = paris
        .credentials_for_user(bob.id, CredentialKind::Password)
        .await
        .unwrap_err();
    assert!(refused(&e).is_some(), "{e:?}");
    let e = paris
        .insert_credential(&password(bob.id))
        .await
        .unwrap_err();
    assert!(refused(&e).is_some(), "{e:?}");
    // Creating an account for another region is a cross-region write: refused, nothing kept.
    let carl = user("carl@example.us", Some(us()));
    let e = paris.create_user(&carl, &[]).await.unwrap_err();
    assert!(refused(&e).is_some(), "{e:?}");
    assert_eq!(directory.region_of(carl.id).await.unwrap(), None);
    // Lookups by secret search only the home region: bob's credential is not found from eu.
    let bobs = boston
        .credentials_for_user(bob.id, CredentialKind::Password)
        .await
        .unwrap();
    assert_eq!(paris.credential_by_id(bobs[0].id).await.unwrap(), None);

    // Allowed explicitly: the same calls reach the account's region.
    let roaming = dbs
        .process(eu(), Arc::clone(&directory))
        .allow_cross_region(CrossRegion::Allow);
    assert_eq!(
        roaming.user_by_id(bob.id).await.unwrap().unwrap().id,
        bob.id
    );
    assert_eq!(
        roaming
            .credential_by_id(bobs[0].id)
            .await
            .unwrap()
            .unwrap()
            .id,
        bobs[0].id
    );

    // An address is unique across regions, in either letter case.
    let twin = user("Bob@Example.us", None);
    assert!(matches!(
        paris.create_user(&twin, &[]).await.unwrap_err(),
        StoreError::Conflict("email")
    ));
    assert_eq!(directory.region_of(twin.id).await.unwrap(), None);
    assert!(
        !dump(&dbs.dir.path().join("eu.db"))
            .await
            .contains("Bob@Example.us")
    );

    // Changing an address moves its reservation; taking another region's is refused.
    let mut anne2 = paris.user_by_id(anne.id).await.unwrap().unwrap();
    anne2.email = Some(Email::parse("bob@example.us").unwrap());
    assert!(matches!(
        paris.update_user(&anne2).await.unwrap_err(),
        StoreError::Conflict("email")
    ));
    anne2.email = Some(Email::parse("anne@example.org").unwrap());
    paris.update_user(&anne2).await.unwrap();
    let renamed = paris
        .user_by_email(&Email::parse("anne@example.org").unwrap())
        .await
        .unwrap();
    assert_eq!(renamed.unwrap().id, anne.id);
    assert_eq!(
        paris
            .user_by_email(&Email::parse("anne@example.eu").unwrap())
            .await
            .unwrap(),
        None
    );
    // The old address is free again, in any region.
    let newcomer = user("anne@example.eu", Some(us()));
    boston.create_user(&newcomer, &[]).await.unwrap();

    // Deleting frees the address everywhere; the id keeps its region until forgotten.
    assert!(boston.delete_user(bob.id).await.unwrap());
    assert_eq!(directory.region_of(bob.id).await.unwrap(), Some(us()));
    let again = user("bob@example.us", None);
    paris.create_user(&again, &[]).await.unwrap();
    assert!(boston.forget_user(bob.id).await.unwrap());
    assert_eq!(directory.region_of(bob.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_stay_in_their_region_with_a_memory_directory() {
    residency(Arc::new(MemoryDirectory::new())).await;
}

/// A fresh schema in the test PostgreSQL (`CIAM_TEST_POSTGRES_URL`).
async fn postgres_directory() -> PostgresDirectory {
    let url = std::env::var("CIAM_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!("CIAM_TEST_POSTGRES_URL is not set: run scripts/test.sh (it starts PostgreSQL)")
    });
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .unwrap();
    let schema = format!(
        "regional_{}",
        UserId::generate(&SystemRandom::new())
            .unwrap()
            .to_string()
            .to_lowercase()
    );
    PostgresDirectory::open(pool, &schema).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_stay_in_their_region_with_a_postgres_directory() {
    residency(Arc::new(postgres_directory().await)).await;
}

/// Two regions claiming the same address at once: exactly one wins, in the directory and in
/// the databases.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_claims_of_one_address_give_one_account() {
    let directory: Arc<dyn RegionDirectory> = Arc::new(postgres_directory().await);
    let dbs = TwoRegions::new().await;
    for round in 0..10 {
        let address = format!("race{round}@example.com");
        let a = dbs.process(eu(), Arc::clone(&directory));
        let b = dbs.process(us(), Arc::clone(&directory));
        let (ua, ub) = (user(&address, None), user(&address, None));
        let (ra, rb) = tokio::join!(
            tokio::spawn(async move { a.create_user(&ua, &[]).await }),
            tokio::spawn(async move { b.create_user(&ub, &[]).await }),
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert!(
            ra.is_ok() != rb.is_ok(),
            "round {round}: exactly one may win: {ra:?} {rb:?}"
        );
        let loser = if ra.is_ok() { rb } else { ra };
        assert!(matches!(loser.unwrap_err(), StoreError::Conflict("email")));
    }
}
