"""The brand marketer's pages that draw on every domain: home (the brand
switcher) and a brand's dashboard. May import any app; no app imports it."""
