# The refund approvals finance works (console/approvals): see console.models.RefundApproval.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('console', '0007_notifications'),
        ('tickets', '0005_message_triage_reply_draft'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='RefundApproval',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('charge_id', models.CharField(max_length=255, verbose_name='charge')),
                ('amount', models.BigIntegerField(verbose_name='amount')),
                ('currency', models.CharField(max_length=3, verbose_name='currency')),
                ('reason', models.CharField(max_length=32, verbose_name='reason')),
                ('note', models.TextField(blank=True, default='', verbose_name='note')),
                ('refusal', models.TextField(blank=True, default='', verbose_name='refusal')),
                ('requested_at', models.DateTimeField(auto_now_add=True, verbose_name='requested')),
                ('token', models.CharField(max_length=64, unique=True)),
                ('refund_token', models.CharField(max_length=64)),
                ('status', models.CharField(choices=[('open', 'Open'), ('approved', 'Approved'), ('declined', 'Declined')], default='open', max_length=16, verbose_name='status')),
                ('decided_at', models.DateTimeField(blank=True, null=True, verbose_name='decided')),
                ('refund_id', models.CharField(blank=True, default='', max_length=255, verbose_name='refund')),
                ('refunded', models.BigIntegerField(blank=True, null=True)),
                ('decline_reason', models.TextField(blank=True, default='', verbose_name='reason declined')),
                ('decided_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='decided by')),
                ('previous_team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='tickets.team')),
                ('requested_by', models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='requested by')),
                ('ticket', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='tickets.ticket', verbose_name='ticket')),
            ],
            options={
                'verbose_name': 'refund approval',
                'verbose_name_plural': 'refund approvals',
                'ordering': ['requested_at', 'id'],
                'indexes': [models.Index(condition=models.Q(('status', 'open')), fields=['requested_at', 'id'], name='refund_approval_open')],
            },
        ),
    ]
