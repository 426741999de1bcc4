import pytest
from django.core.management import CommandError, call_command

from campaigns.models import Campaign
from generation.models import GenerationJob


def submit(*extra, **options):
    call_command("campaign_submit", "--brand", "acme", "--user", "owner", "--name", "Spring", *extra, **options)


def test_it_queues_a_campaign_and_prints_one_line(persona, capsys):
    submit("--personas", "@ava", "--formats", "1:1,9:16", "--variants", "2", "--idempotency-key", "k1")
    submit("--personas", "ava", "--formats", "1:1,9:16", "--variants", "2", "--idempotency-key", "k1")

    campaign = Campaign.objects.unscoped().get()
    assert capsys.readouterr().out.splitlines()[0] == f"Campaign {campaign.pk} 'Spring': 4 images queued."
    assert GenerationJob.objects.unscoped().count() == 4


def test_it_prints_the_estimate_without_queueing(persona, capsys):
    submit("--personas", "ava", "--variants", "3", "--estimate")
    assert capsys.readouterr().out.strip() == (
        "3 images, 3 forward passes, worker time unknown (no worker has measured this model yet)"
    )
    assert not Campaign.objects.unscoped().exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--personas", "nobody"], "Brand acme has no persona @nobody."),
        (["--personas", "ava", "--looks", "Denim"], "Brand acme's library has no look named 'Denim'."),
        (["--personas", "ava", "--formats", "3:2"], "Unknown format '3:2'; the formats are 1:1, 4:5, 9:16."),
        (["--personas", "ava", "--variants", "0"], "Variants must be a whole number from 1 to 16, got 0."),
    ],
)
def test_it_refuses_bad_input_in_one_line_and_queues_nothing(persona, arguments, message):
    with pytest.raises(CommandError) as error:
        submit(*arguments)
    assert str(error.value) == message and "\n" not in str(error.value)
    assert not GenerationJob.objects.unscoped().exists()


def test_it_refuses_a_user_who_may_not_create(persona, viewer):
    with pytest.raises(CommandError, match="viewer may not queue campaigns for acme"):
        call_command("campaign_submit", "--brand", "acme", "--user", "viewer", "--name", "X", "--personas", "ava")
